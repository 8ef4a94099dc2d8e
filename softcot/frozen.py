"""Loading a frozen causal LM and its tokenizer, and picking its placeholder/marker tokens.

    model, tok = load_frozen_lm("Qwen/Qwen2.5-1.5B-Instruct", dtype="bfloat16")

Both LMs of SoftCoT load the same way: `from_pretrained` on a local folder or hub id, weights
frozen (requires_grad False, eval mode). No model family is detected from its name: special
tokens are found in the tokenizer's own vocabulary (reference-code trap 3).
"""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from softcot.errors import ConfigError, ModelLoadError
from softcot.utils import log, pick_device, torch_dtype

# Spare special tokens that real instruct tokenizers ship (Llama-3 reserved tokens, Qwen FIM
# padding, our mini models), tried in order when no placeholder is configured.
PLACEHOLDER_CANDIDATES = (
    "<|reserved_special_token_0|>",
    "<|fim_pad|>",
    "<|thought|>",
    "<|placeholder|>",
)
MARKER_CANDIDATES = (
    ("<|reserved_special_token_1|>", "<|reserved_special_token_2|>"),
    ("<|box_start|>", "<|box_end|>"),
    ("<|bot|>", "<|eot|>"),
    ("<|start_thought|>", "<|end_thought|>"),
)
PLAIN_MARKERS = ("<thoughts>", "</thoughts>")


def _short(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def load_tokenizer(path: str):
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:  # noqa: BLE001 - every loader failure becomes one line
        raise ModelLoadError(f"cannot load tokenizer {path!r}: {_short(e)}") from None
    if tok.pad_token_id is None:  # padding is always masked out, so EOS is a safe filler
        tok.pad_token = tok.eos_token
    return tok


def load_frozen_lm(path: str, dtype: str = "float32", device: str = "auto",
                   attn: str = "auto") -> tuple[PreTrainedModel, object]:
    """Load a causal LM + tokenizer, frozen and in eval mode. Raises ModelLoadError in one line.
    attn: "auto" (transformers' default kernel) or an `attn_implementation` name (sdpa, eager)."""
    if not path:
        raise ConfigError("model path is empty; expected a local folder or a hub id")
    local = Path(path)
    looks_local = path.startswith((".", "/", "~")) or local.exists()
    if looks_local and not (local / "config.json").is_file():
        raise ModelLoadError(f"model folder {path!r} not found or has no config.json; expected a Hugging Face model folder")
    # device "map:auto" (or map:balanced, map:sequential): shard the layers over every visible GPU
    # (then CPU memory) with accelerate's big-model loading, for an LLM that fits no single device
    device_map = device[4:] if device.startswith("map:") else None
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype(dtype), device_map=device_map,
                                                     attn_implementation=None if attn == "auto" else attn)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(
            f"cannot load model {path!r} ({_short(e)}); expected a local model folder or a reachable hub id"
        ) from None
    model.requires_grad_(False)
    model.eval()
    if device_map is None:
        model.to(pick_device(device))
    return model, load_tokenizer(path)


def _contiguous_input(module: torch.nn.Module, args: tuple) -> tuple:
    return (args[0].contiguous(), *args[1:])


def contiguous_lm_head(model: PreTrainedModel) -> None:
    """Give the LM head a contiguous input (idempotent). transformers slices the last position,
    hidden[:, -1:, :] [B, 1, d], which is not contiguous for B > 1; for a weight that does not
    require grad torch's matmul then expands the weight per row and calls bmm, which on CPU
    copies it B times: 53 s instead of 0.05 s for one batch-16 prefill with a bf16 152k x 3584
    head (benchmarks/bench_shapes.py). Copying [B, 1, d] instead costs nothing."""
    head = model.get_output_embeddings()
    if head is not None and not getattr(head, "_softcot_contiguous", False):
        head.register_forward_pre_hook(_contiguous_input)
        head._softcot_contiguous = True


def single_token_id(tokenizer, text: str) -> int | None:
    """The id of `text` if the tokenizer encodes it as exactly one token, else None."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def resolve_placeholder(tokenizer, requested: str | None, who: str) -> tuple[str, int]:
    """The placeholder token (text, id) for one model. A configured one must be a single token;
    otherwise the first spare special token found, then UNK."""
    if requested is not None:
        tid = single_token_id(tokenizer, requested)
        if tid is None:
            raise ConfigError(
                f"{who} placeholder {requested!r} is not a single token of the {who} tokenizer; "
                f"expected a special token of its vocabulary (e.g. one of its added tokens)"
            )
        return requested, tid
    avoid = {tokenizer.eos_token_id, tokenizer.bos_token_id}
    for cand in PLACEHOLDER_CANDIDATES + tuple(getattr(tokenizer, "additional_special_tokens", None) or ()):
        tid = single_token_id(tokenizer, cand)
        if tid is not None and tid not in avoid and cand in tokenizer.get_vocab():
            return _chosen(who, cand, tid, "a spare special token of its vocabulary")
    # No spare token (GPT-2: <|endoftext|> is bos, eos and pad at once; GPT-NeoX: only <|padding|>
    # and <|endoftext|>). Slots are found by id among attended prompt positions only (padding
    # and, in training, the reply are excluded), so a token that doubles as pad or EOS is safe
    # as long as the rendered prompt holds it nowhere else (checked per batch: the slot count).
    for text, tid, why in ((tokenizer.unk_token, tokenizer.unk_token_id, "the unknown token"),
                           (tokenizer.pad_token, tokenizer.pad_token_id, "the pad token (padding is masked out)"),
                           (tokenizer.eos_token, tokenizer.eos_token_id, "the EOS token (no spare or pad token; "
                            "slots are searched in the prompt only)")):
        if text is not None and tid is not None and (tid not in avoid or why.startswith("the EOS")):
            return _chosen(who, text, tid, why)
    raise ConfigError(f"no usable token found for the {who} placeholder; set --{who}-placeholder to one")


def _chosen(who: str, text: str, tid: int, why: str) -> tuple[str, int]:
    log.info("%s placeholder: %r (id %d), %s; --%s-placeholder overrides it", who, text, tid, why, who)
    return text, tid


def resolve_markers(tokenizer, begin: str | None, end: str | None) -> tuple[str, str]:
    """Begin/end markers around the LLM's thought block: configured, else a spare special-token
    pair of the tokenizer, else plain text tags. Markers are text: they need not be single tokens."""
    if begin is not None and end is not None:
        return begin, end
    vocab = tokenizer.get_vocab()
    for b, e in MARKER_CANDIDATES:
        if b in vocab and e in vocab:
            return (begin if begin is not None else b), (end if end is not None else e)
    return (begin if begin is not None else PLAIN_MARKERS[0]), (end if end is not None else PLAIN_MARKERS[1])


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
