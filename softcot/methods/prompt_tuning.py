"""Prompt tuning (static ablation): N learned LLM-space vectors fill the thought slots, the same
vectors for every question. Same slots, loss and training loop as SoftCoT, but nothing depends on
the question: it separates instance-specific soft thoughts from plain task adaptation.

    method = build_method(ModelConfig(method="prompt-tuning", llm="large"))
    train(method, TrainConfig(train_n_thoughts=32, ...), examples)   # then generate with n_thoughts <= 32

`cfg.prompt_tuning.tokens` vectors are learned (fp32); a run with n thoughts uses the first n, as a
SoftCoT run with fewer slots sees the first n of a causal assistant's thoughts.
"""
from __future__ import annotations

import torch
from torch import nn

from softcot.methods.base import SlotMethod


class PromptVectors(nn.Module):
    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.prompt = nn.Parameter(init.detach().float().clone())  # [P, d_llm] fp32

    def forward(self, batch: int, n: int) -> torch.Tensor:
        if n > self.prompt.shape[0]:
            raise ValueError(f"n_thoughts={n} but only prompt_tuning.tokens={self.prompt.shape[0]} vectors were learned")
        return self.prompt[:n].unsqueeze(0).expand(batch, n, -1)  # [B, n, d_llm]


def initial_prompt(llm, cfg) -> torch.Tensor:
    """[P, d_llm]: random rows of the LLM's embedding table ("vocab"), or the placeholder's
    embedding plus noise at 1 % of the table's RMS ("placeholder")."""
    table = llm.model.get_input_embeddings().weight.detach().float()
    P = cfg.prompt_tuning.tokens
    if cfg.prompt_tuning.init == "vocab":
        return table[torch.randint(0, table.shape[0], (P,))]
    return table[llm.placeholder_id].expand(P, -1) + 0.01 * llm.embedding_rms * torch.randn(P, table.shape[1])


class PromptTuning(SlotMethod):
    name = "prompt-tuning"
    description = "ablation: N learned vectors fill the thought slots, the same for every question"
    trains_what = "prompt vectors"
    weights_name = "prompt.safetensors"

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        self.trainable = PromptVectors(initial_prompt(llm, cfg)).to(llm.model.device)

    def thoughts(self, examples, n: int, cache=None) -> torch.Tensor:
        return self.trainable(len(examples), n)  # [B, n, d_llm], identical rows
