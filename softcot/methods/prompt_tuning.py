"""Prompt tuning (static ablation): N learned LLM-space vectors fill the thought slots, the same
vectors for every question. Same slots, loss and training loop as SoftCoT, but nothing depends on
the question: it separates instance-specific soft thoughts from plain task adaptation.

    method = build_method(SoftCoTConfig(method="prompt-tuning", llm="large", prompt_tokens=32))
    train(method, TrainConfig(n_thoughts=32, ...), examples)   # then generate with n_thoughts <= 32

`cfg.prompt_tokens` vectors are learned (fp32); a run with n thoughts uses the first n, as a
SoftCoT run with fewer slots sees the first n of a causal assistant's thoughts.
"""
from __future__ import annotations

import torch
from torch import nn

from softcot.data import target_text
from softcot.methods.base import Method


class PromptVectors(nn.Module):
    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.prompt = nn.Parameter(init.detach().float().clone())  # [P, d_llm] fp32

    def forward(self, batch: int, n: int) -> torch.Tensor:
        if n > self.prompt.shape[0]:
            raise ValueError(f"n_thoughts={n} but only prompt_tokens={self.prompt.shape[0]} vectors were learned")
        return self.prompt[:n].unsqueeze(0).expand(batch, n, -1)  # [B, n, d_llm]


def initial_prompt(llm, cfg) -> torch.Tensor:
    """[P, d_llm]: random rows of the LLM's embedding table ("vocab"), or the placeholder's
    embedding plus noise at 1 % of the table's RMS ("placeholder")."""
    table = llm.model.get_input_embeddings().weight.detach().float()
    P = cfg.prompt_tokens
    if cfg.prompt_init == "vocab":
        return table[torch.randint(0, table.shape[0], (P,))]
    rms = table.pow(2).mean(-1).sqrt().mean()
    return table[llm.placeholder_id].expand(P, -1) + 0.01 * rms * torch.randn(P, table.shape[1])


class PromptTuning(Method):
    name = "prompt-tuning"
    weights_name = "prompt.safetensors"

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        self.trainable = PromptVectors(initial_prompt(llm, cfg)).to(llm.model.device)

    def llm_thoughts(self, examples, n: int) -> torch.Tensor:
        return self.trainable(len(examples), n)  # [B, n, d_llm], identical rows

    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))

    def generation_inputs(self, examples, n_thoughts):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        return self.llm.splice(self.llm.embed(ids), ids, mask, self.llm_thoughts(examples, n_thoughts)), mask

    def train_inputs(self, examples, n_thoughts, max_length=1024):
        texts = self.prompt_texts(examples, n_thoughts)
        ids, mask, labels = self.llm.encode_train(texts, [target_text(ex) for ex in examples], max_length)
        return self.llm.splice(self.llm.embed(ids), ids, mask, self.llm_thoughts(examples, n_thoughts)), mask, labels
