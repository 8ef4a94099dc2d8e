"""Zero-shot CoT: the frozen LLM alone with the task instruction, through the same prompt and
decoding code as SoftCoT (only the thought block is absent)."""
from __future__ import annotations

from softcot.methods.base import Method


class ZeroShotCoT(Method):
    name = "zero-shot-cot"

    def generation_inputs(self, examples, n_thoughts):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        return self.llm.embed(ids), mask
