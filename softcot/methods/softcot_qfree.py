"""Question-free SoftCoT: the soft thoughts stand in for the question (input compression).

The assistant still reads the question; the LLM's prompt is [instruction, thought block] without
the question text, so whatever the LLM knows about the question comes through the N projected
thoughts (more of them than SoftCoT's 4: `softcot_qfree.n_thoughts`, default 16). Only the
projection trains, exactly as in SoftCoT.

    method = build_method(ModelConfig(method="softcot-qfree", assistant=A, llm=L))
    train(method, TrainConfig(output_dir="runs/qfree", train_n_mix="1-32"), train_examples)
    method.generate(examples, DecodingConfig(), n_thoughts=16)

    softcot train --method softcot-qfree --softcot-qfree-n-thoughts 16 --train-n-mix 1-32 ...
"""
from __future__ import annotations

from softcot.methods.softcot import SoftCoT


class SoftCoTQFree(SoftCoT):
    name = "softcot-qfree"
    description = "SoftCoT whose LLM prompt omits the question: the projected soft thoughts carry it"

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        llm.with_question = False  # prompts with a thought block leave the question out (prompts.llm_message)

    def thought_count(self, n: int | None = None) -> int:
        return n or self.cfg.softcot_qfree.n_thoughts
