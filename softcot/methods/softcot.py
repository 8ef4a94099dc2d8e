"""SoftCoT: assistant soft thoughts -> trainable projection -> the frozen LLM's thought slots.

    method = SoftCoT(cfg, llm, assistant)
    loss = method.loss(examples, n_thoughts=32)
    method.generate(examples, DecodingConfig(), n_thoughts=4)
"""
from __future__ import annotations

import torch

from softcot.data import Example
from softcot.methods.base import SlotMethod
from softcot.projection import Projection, load_reference_projection


def build_projection(cfg, assistant, llm) -> Projection:
    """The projection a config describes, for this assistant/LLM pair (SoftCoT and SoftCoT++)."""
    p = cfg.projection
    return Projection(
        assistant.hidden_size, llm.hidden_size, kind=p.kind, hidden=p.hidden, bias=p.bias, norm=p.norm,
        target_rms=llm.embedding_rms,
    ).to(llm.model.device)


@torch.no_grad()
def bridge_init(projection: Projection, assistant, llm, how: str, examples: list, states_of) -> dict:
    """Start `projection` from the vocabulary bridge (how='vocab'; a Linear projection only: an
    MLP keeps its random init) fitted on `states_of(batch)` [b, n, d_a] over `examples`."""
    if how != "vocab" or projection.kind != "linear":
        return {"projection_init": "random"}
    from softcot.bridge import vocab_bridge_fit

    states = torch.cat([states_of(examples[i : i + 64]) for i in range(0, len(examples), 64)])  # [K, n, d_a]
    fit = vocab_bridge_fit(assistant, llm, states.reshape(-1, states.shape[-1]))  # [K*n, d_a] -> Linear
    projection.net.weight.copy_(fit["net.weight"].to(projection.net.weight))
    if projection.net.bias is not None:
        projection.net.bias.copy_(fit["net.bias"].to(projection.net.bias))
    return {"projection_init": "vocab", "bridge_r2": round(float(fit["r2"]), 4), "bridge_states": states.shape[0] * states.shape[1]}


class SoftCoT(SlotMethod):
    name = "softcot"
    description = "frozen assistant's soft thoughts -> trainable projection -> the frozen LLM's thought slots"
    trains_what = "projection"
    needs_assistant = True
    cacheable_thoughts = True  # the assistant is frozen: an example's thoughts never change
    weights_name = "projection.safetensors"

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        self.trainable = build_projection(cfg, assistant, llm)

    @property
    def projection(self) -> Projection:
        return self.trainable

    def thoughts(self, examples: list[Example], n: int, cache=None) -> torch.Tensor:
        states = cache.get(examples, n) if cache is not None else self.assistant.soft_thoughts(examples, n)
        return self.projection(states)  # [B, n, d_a] -> [B, n, d_llm] fp32

    @classmethod
    def bridges(cls, cfg) -> bool:
        return cfg.projection.kind == "linear"  # an MLP keeps its random init

    @torch.no_grad()
    def init_trainable(self, examples: list[Example], n: int, how: str, cache=None, max_examples: int = 512) -> dict:
        """how='vocab': the vocabulary bridge (softcot.bridge) fitted on the slot states of the
        first `max_examples` training questions (no labels)."""
        sub = examples[:max_examples]
        states = lambda batch: cache.get(batch, n) if cache is not None else self.assistant.soft_thoughts(batch, n)  # noqa: E731
        return bridge_init(self.projection, self.assistant, self.llm, how, sub, states)

    def load_reference(self, path) -> None:
        """Import the paper's `projection.bin` (Linear weight + bias)."""
        if self.cfg.projection.kind != "linear" or self.cfg.projection.norm != "none":
            raise ValueError("a reference projection.bin is a plain Linear: use --projection-kind linear "
                             "--projection-norm none")
        sd = load_reference_projection(path, self.assistant.hidden_size, self.llm.hidden_size)
        if "net.bias" not in sd and self.cfg.projection.bias:
            sd["net.bias"] = torch.zeros(self.llm.hidden_size)
        self.load_tensors(sd, str(path))
