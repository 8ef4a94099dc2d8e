"""Zero-shot CoT-Unk: the SoftCoT prompt with its N thought slots left as the LLM's own
placeholder token (untrained "pause" tokens). Training-free; isolates the effect of the extra
slots from the effect of what fills them.

    method = build_method(ModelConfig(method="cot-unk", llm="path/to/llm", n_thoughts=4))
    method.generate(examples, DecodingConfig())
"""
from __future__ import annotations

import torch

from softcot.methods.base import SlotMethod


class CoTUnk(SlotMethod):
    name = "cot-unk"
    description = "the thought slots keep the LLM's placeholder-token embedding (pause tokens)"

    def thoughts(self, examples, n, cache=None) -> torch.Tensor:
        ph = self.llm.embed(torch.tensor([self.llm.placeholder_id], device=self.llm.model.device))  # [1, d_llm]
        return ph.expand(len(examples), n, -1)  # [B, n, d_llm]: the slot's own embedding, unchanged
