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

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from softcot.data import Example

# Task -> family. New tasks register here (or pass family= explicitly).
TASK_FAMILY: dict[str, str] = {
    "gsm8k": "numeric",
    "asdiv": "numeric",
    "asdiv-aug": "numeric",
    "miniworld": "numeric",
    "aqua": "choice",
    "date": "choice",
    "strategyqa": "yesno",
}

# What the LLM is asked to do. The answer format matches the training targets and the scorer.
LLM_INSTRUCTION: dict[str, str] = {
    "numeric": "Solve the problem step by step. End with: The answer is \\boxed{number}.",
    "choice": "Solve the problem step by step, then pick one option. "
    "End with: The answer is \\boxed{letter}.",
    "yesno": "Think step by step, then answer yes or no. End with: The answer is \\boxed{yes or no}.",
}

# What the assistant reads (SoftCoT, SoftCoT++) or answers (Assist-CoT hints).
ASSISTANT_INSTRUCTION: dict[str, str] = {
    "numeric": "Write a short hint for solving this problem.",
    "choice": "Write a short hint for choosing the right option.",
    "yesno": "Write a short hint for answering this yes/no question.",
}

# Put between the question and the thought block, the same text for soft and hard thoughts.
THOUGHT_PREAMBLE = "Hints from an assistant (use them only if they help):"

# A fixed date for templates that would otherwise print today's date (Llama-3.x).
FIXED_DATE = "26 Jul 2024"

# Plain fallback when a tokenizer has no chat template.
PLAIN_USER = "User: {message}\nAssistant:"


def family_of(task: str) -> str:
    """The task family ("numeric", "choice" or "yesno") of a task name."""
    if task in TASK_FAMILY:
        return TASK_FAMILY[task]
    if task in LLM_INSTRUCTION:  # a family name is accepted as a task
        return task
    raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_FAMILY)}")


def question_block(example: "Example") -> str:
    """The question, followed by its options (one per line) for multiple choice."""
    text = example.question.strip()
    if example.options:
        text += "\nOptions:\n" + "\n".join(o.strip() for o in example.options)
    return text


def llm_message(example: "Example", thoughts: str | None = None, *, begin: str = "", end: str = "") -> str:
    """The LLM's user message. `thoughts` is the block's content: N placeholder tokens
    (SoftCoT, CoT-Unk), an assistant-written hint (Assist-CoT), or None (zero-shot CoT)."""
    msg = f"{LLM_INSTRUCTION[family_of(example.task)]}\n\nQuestion: {question_block(example)}"
    if thoughts is not None:
        msg += f"\n\n{THOUGHT_PREAMBLE} {begin}{thoughts}{end}"
    return msg


def assistant_message(example: "Example", placeholders: str | None = None) -> str:
    """The assistant's user message; `placeholders` (N placeholder tokens) go at its end."""
    msg = f"{ASSISTANT_INSTRUCTION[family_of(example.task)]}\n\nQuestion: {question_block(example)}"
    if placeholders is not None:
        msg += f"\n\n{placeholders}"
    return msg


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer, message: str) -> str:
    """The full prompt text for one user message, ending with the generation header."""
    if not has_chat_template(tokenizer):
        return PLAIN_USER.format(message=message)
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": message}],
        tokenize=False,
        add_generation_prompt=True,
        date_string=FIXED_DATE,
    )


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
    full = tokenizer.apply_chat_template(msgs, tokenize=False, date_string=FIXED_DATE)
    after = full.split(marker, 1)[1].strip() if marker in full else ""
    if not after:
        return eos
    # Keep the first special token if the suffix holds several pieces ("<|im_end|>\n").
    for tok in tokenizer.all_special_tokens + list(getattr(tokenizer, "added_tokens_encoder", {})):
        if tok and after.startswith(tok):
            return tok
    return after.split()[0]
