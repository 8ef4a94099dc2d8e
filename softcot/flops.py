"""What a method's forward passes cost, counted from each model's config and the tokens it processed.

    from softcot.flops import FlopMeter
    with FlopMeter({"llm": method.llm.model, "assistant": method.assistant.model}) as meter:
        method.generate(batch, dec)
    meter.totals()   # {"llm": {"flops": ..., "tokens": ..., "calls": ..., "peak_kv": ...}, "assistant": {...}}

Every forward call of a hooked model (a prefill, one decoding step, one of Coconut's continuous
thoughts, an assistant pass, a SoftCoT++ chain) is recorded with its batch size B, the new
positions T it computes, the key/value length S it attends over (past + new) and the positions
whose logits it computes. Its cost is counted from the config, the way
`torch.utils.flop_counter.FlopCounterMode` counts matrix products (2 FLOPs per multiply-add;
norms, softmax, rotary and element-wise work are not counted; padded positions are computed and so
are counted):

    per new position and layer:  2 * (q + k + v + o + gate + up + down weights) + LoRA adapters
                                 + 4 * heads * head_dim * S        (scores and weighted values)
    per logit position:          2 * hidden * vocab                (the LM head)

`tests/test_flops.py` holds this count within a few per cent of FlopCounterMode for every method.
"""
from __future__ import annotations

import torch


def layer_linear_params(cfg) -> int:
    """Weights of one decoder layer's linear maps (attention q/k/v/o and the gated MLP)."""
    d, h = cfg.hidden_size, cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or d // h
    kv = getattr(cfg, "num_key_value_heads", None) or h
    return d * h * hd + 2 * d * kv * hd + h * hd * d + 3 * d * cfg.intermediate_size


def lora_params_per_layer(model) -> int:
    """LoRA adapter weights per decoder layer (0 without adapters): they run on every position."""
    n = sum(p.numel() for name, p in model.named_parameters() if "lora_" in name)
    return n // max(1, _config(model).num_hidden_layers)


def _config(model):
    cfg = model.config
    return getattr(cfg, "text_config", None) or cfg


def forward_flops(cfg, batch: int, new: int, kv_len: int, logits: int, lora_per_layer: int = 0) -> int:
    """FLOPs of one forward call: `batch` rows, `new` positions each, attending over `kv_len` keys,
    LM-head logits at `logits` positions per row."""
    h = cfg.num_attention_heads
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // h
    per_pos = 2 * (layer_linear_params(cfg) + lora_per_layer) + 4 * h * hd * kv_len
    return batch * (cfg.num_hidden_layers * new * per_pos + logits * 2 * cfg.hidden_size * cfg.vocab_size)


class FlopMeter:
    """Counts the forward calls of some models while active (a context manager). Each model's
    decoder (`get_decoder()`: the layers) and LM head (`get_output_embeddings()`) are hooked
    separately, so methods that run the decoder alone (the assistant's soft thoughts, Coconut's
    continuous thoughts) or the head alone are counted too. `layers[name]` lists (batch, new,
    kv_len) per decoder call, `heads[name]` the number of logit positions per head call."""

    def __init__(self, models: dict[str, torch.nn.Module]):
        self.models = {k: m for k, m in models.items() if m is not None}
        self._lora = {k: lora_params_per_layer(m) for k, m in self.models.items()}
        self._handles: list = []
        self.reset()

    def __enter__(self) -> "FlopMeter":
        for name, model in self.models.items():
            self._handles.append(model.get_decoder().register_forward_pre_hook(self._layer_hook(name), with_kwargs=True))
            self._handles.append(model.get_output_embeddings().register_forward_pre_hook(self._head_hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def _layer_hook(self, name: str):
        def hook(module, args, kwargs):
            x = kwargs.get("inputs_embeds")
            if x is None:
                x = kwargs.get("input_ids")
            if x is None and args:
                x = args[0]
            if x is None:
                return None
            b, t = int(x.shape[0]), int(x.shape[1])
            past = kwargs.get("past_key_values")
            p = int(past.get_seq_length()) if past is not None and hasattr(past, "get_seq_length") else 0
            mask = kwargs.get("attention_mask")
            s = int(mask.shape[-1]) if isinstance(mask, torch.Tensor) and mask.dim() == 2 else p + t
            self.layers[name].append((b, t, max(s, p + t)))
            return None

        return hook

    def _head_hook(self, name: str):
        def hook(module, args):
            x = args[0]  # [..., hidden]: every leading position gets a logit row
            self.heads[name].append(int(x.numel() // x.shape[-1]))
            return None

        return hook

    def totals(self) -> dict[str, dict]:
        """Per model: FLOPs, positions computed by the layers (batch x new, padding included), decoder
        calls, and the largest key/value length any call attended over."""
        out = {}
        for name, recs in self.layers.items():
            cfg = _config(self.models[name])
            flops = sum(forward_flops(cfg, b, t, s, 0, self._lora[name]) for b, t, s in recs)
            flops += sum(2 * n * cfg.hidden_size * cfg.vocab_size for n in self.heads[name])
            out[name] = {"flops": flops, "tokens": sum(b * t for b, t, _ in recs), "calls": len(recs),
                         "peak_kv": max((s for _, _, s in recs), default=0)}
        return out

    def reset(self) -> None:
        self.layers: dict[str, list[tuple[int, int, int]]] = {k: [] for k in self.models}
        self.heads: dict[str, list[int]] = {k: [] for k in self.models}
