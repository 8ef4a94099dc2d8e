"""Zero-shot CoT: the frozen LLM alone with the task instruction, through the same prompt and
decoding code as SoftCoT (only the thought block is absent)."""
from __future__ import annotations

from softcot.methods.base import Method


class ZeroShotCoT(Method):
    name = "zero-shot-cot"
    description = "the frozen LLM with the task instruction, no thought block"

    def thought_count(self, n=None) -> int:
        return 0
