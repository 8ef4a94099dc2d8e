"""Zero-shot CoT-Unk: the SoftCoT prompt with its N thought slots left as the LLM's own
placeholder token (untrained "pause" tokens). Training-free; isolates the effect of the extra
slots from the effect of what fills them.

    method = build_method(SoftCoTConfig(method="cot-unk", llm="path/to/llm", n_thoughts=4))
    method.generate(examples, DecodingConfig())
"""
from __future__ import annotations

from softcot.methods.base import Method


class CoTUnk(Method):
    name = "cot-unk"

    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))

    def generation_inputs(self, examples, n_thoughts):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        return self.llm.embed(ids), mask  # the slots keep the placeholder token's own embedding
