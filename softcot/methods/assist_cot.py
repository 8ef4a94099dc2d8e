"""Zero-shot Assist-CoT: the frozen assistant writes a short hard-text hint (greedy, at most
`cfg.assist_cot.hint_tokens` tokens) that fills the LLM's thought block where SoftCoT puts its
soft thoughts. Training-free; the hard-text counterpart of SoftCoT.

    method = build_method(ModelConfig(method="assist-cot", assistant="small", llm="large"))
    method.generate(examples, DecodingConfig())
"""
from __future__ import annotations

from softcot.methods.base import Method


class AssistCoT(Method):
    name = "assist-cot"
    description = "the assistant writes a hard-text hint into the LLM's thought block"
    needs_assistant = True

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        # Greedy hints are a pure function of the assistant's prompt: keep them, so the prompt
        # recorded after generation (evaluate.py) costs no second assistant run.
        self._hints: dict[str, str] = {}

    def thought_count(self, n=None) -> int:
        return 0  # the block holds text, not slots

    def hints(self, examples) -> list[str]:
        keys = self.assistant.prompts(examples, None)
        missing = [(k, ex) for k, ex in zip(keys, examples) if k not in self._hints]
        if missing:
            written = self.assistant.write_hints([ex for _, ex in missing], max_new_tokens=self.cfg.assist_cot.hint_tokens)
            self._hints.update((k, h) for (k, _), h in zip(missing, written))
        return [self._hints[k] for k in keys]

    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.hints(examples))
