"""Prompts for the assistant and the LLM, per task family, through each model's own chat template.

Every method builds its prompt here, so zero-shot CoT, CoT-Unk, Assist-CoT and SoftCoT differ
only by what fills the thought block:

    LLM user message  = instruction + question (+ options) [+ thought preamble + BEGIN <block> END]
    assistant message = assistant instruction + question (+ options) [+ <placeholder> * N]

    from softcot.prompts import llm_message, render_prompt
    text = render_prompt(tokenizer, llm_message(example, thoughts="<ph><ph><ph><ph>"))

Rendering always adds the generation header (reference-code trap 7) and passes a fixed
`date_string`, so Llama-3.x templates do not insert today's date (trap 8).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING

from softcot.tasks import family_of

if TYPE_CHECKING:  # pragma: no cover
    from softcot.data import Example

# Put between the question and the thought block, the same text for soft and hard thoughts.
THOUGHT_PREAMBLE = "Hints from an assistant (use them only if they help):"

# A fixed date for templates that would otherwise print today's date (Llama-3.x).
FIXED_DATETIME = datetime(2024, 7, 26)
FIXED_DATE = FIXED_DATETIME.strftime("%d %b %Y")  # "26 Jul 2024"

# Plain fallback when a tokenizer has no chat template.
PLAIN_USER = "User: {message}\nAssistant:"


def question_block(example: "Example") -> str:
    """The question, followed by its options (one per line) for multiple choice."""
    text = example.question.strip()
    if example.options:
        text += "\nOptions:\n" + "\n".join(o.strip() for o in example.options)
    return text


# How the thought block reads (`ModelConfig.thought_block`), the same for every method. "preamble"
# stays the default: the slots alone cost 16 fewer prompt tokens and are within training noise for
# SoftCoT on the mini world's dev split, but hard-text hints (Assist-CoT) lose 15 points without
# the sentence and markers (README, "Defaults follow our measurements").
THOUGHT_BLOCKS = ("preamble", "markers", "slots")


def llm_message(
    example: "Example", thoughts: str | None = None, *, begin: str = "", end: str = "", block: str = "preamble",
    question: bool = True,
) -> str:
    """The LLM's user message. `thoughts` is the block's content: N placeholder tokens
    (SoftCoT, CoT-Unk), an assistant-written hint (Assist-CoT), or None (zero-shot CoT).
    block: "preamble" = sentence + markers + content, "markers" = markers + content,
    "slots" = content only. question=False leaves the question out (the thoughts carry it)."""
    msg = family_of(example.task).instruction
    if question:
        msg += f"\n\nQuestion: {question_block(example)}"
    if thoughts is not None:
        if block == "preamble":
            msg += f"\n\n{THOUGHT_PREAMBLE} {begin}{thoughts}{end}"
        elif block == "markers":
            msg += f"\n{begin}{thoughts}{end}"
        else:
            msg += f"\n{thoughts}"
    return msg


def assistant_message(example: "Example", placeholders: str | None = None) -> str:
    """The assistant's user message; `placeholders` (N placeholder tokens) go at its end."""
    msg = f"{family_of(example.task).assistant_instruction}\n\nQuestion: {question_block(example)}"
    if placeholders is not None:
        msg += f"\n\n{placeholders}"
    return msg


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


_STRFTIME_CALL = re.compile(r"""strftime_now\(\s*(["'])(.*?)\1\s*\)""")


def pinned_template(template: str | dict) -> str:
    """The chat template with every `strftime_now("<fmt>")` call replaced by the fixed date in
    that format, so a rendered prompt never depends on today's clock (Llama-3.x templates call it
    when `date_string` is undefined; some call it unconditionally)."""
    if isinstance(template, dict):  # several named templates: the default one renders chats
        template = template.get("default") or next(iter(template.values()))
    return _STRFTIME_CALL.sub(lambda m: json.dumps(FIXED_DATETIME.strftime(m.group(2))), template)


def render_prompt(tokenizer, message: str) -> str:
    """The full prompt text for one user message, ending with the generation header."""
    if not has_chat_template(tokenizer):
        return PLAIN_USER.format(message=message)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": message}],
        chat_template=pinned_template(tokenizer.chat_template),
        tokenize=False,
        add_generation_prompt=True,
        date_string=FIXED_DATE,
    )


class Renderer:
    """`render_prompt` for one tokenizer, memoised by message: a training run renders each
    example's chat template once, not once per epoch (the LLM's and the assistant's prompts)."""

    def __init__(self, tokenizer) -> None:
        self.tok, self.memo = tokenizer, {}

    def __call__(self, message: str) -> str:
        if message not in self.memo:
            self.memo[message] = render_prompt(self.tok, message)
        return self.memo[message]


def end_of_turn_text(tokenizer) -> str:
    """The text a chat template puts after an assistant reply ("<|eot_id|>", "<|im_end|>", ...).

    Found by rendering a reply and reading what follows it, so no model family is hard-coded.
    Falls back to the EOS token (plain prompts, or templates that add nothing).
    """
    eos = tokenizer.eos_token or ""
    if not has_chat_template(tokenizer):
        return eos
    marker = "XQZREPLYXQZ"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
    full = tokenizer.apply_chat_template(msgs, chat_template=pinned_template(tokenizer.chat_template),
                                         tokenize=False, date_string=FIXED_DATE)
    after = full.split(marker, 1)[1].strip() if marker in full else ""
    if not after:
        return eos
    # Keep the first special token if the suffix holds several pieces ("<|im_end|>\n").
    for tok in tokenizer.all_special_tokens + list(getattr(tokenizer, "added_tokens_encoder", {})):
        if tok and after.startswith(tok):
            return tok
    return after.split()[0]
