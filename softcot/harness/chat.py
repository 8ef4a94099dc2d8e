"""How an lm-eval request's context becomes the input of a softcot method.

A softcot method builds its own LLM prompt from a question (instruction + question + thought
block, through the LLM's chat template) and its assistant reads the question too, so every lm-eval
context is turned into a `Chat`: the question (the last user message) plus what comes around it.

  * no --apply_chat_template: the whole context (few-shot examples included) is the question;
  * --apply_chat_template: lm-eval hands `SoftCoTLM.apply_chat_template` its messages (system
    prompt, few-shot turns with --fewshot_as_multiturn, a prefilled assistant start); they travel
    inside the context string as JSON (`encode`), so request caching and several processes see
    them too, and are rendered here around the method's own user message (`rendering`).

`prompt=method` (default): the method's user message is softcot's instruction + "Question: " +
the question + thought block, exactly what `softcot eval` (and a trained projection) uses.
`prompt=task`: lm-eval's text alone is the user message (+ the thought block).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json

from softcot.prompts import FIXED_DATE, has_chat_template, pinned_template
from softcot.tasks import family_of

CHAT_PREFIX = "softcot-chat:"  # a context that holds lm-eval's chat messages as JSON


@dataclasses.dataclass(frozen=True)
class Chat:
    question: str  # the last user message: what the method (and its assistant) reads
    before: tuple = ()  # (role, content) messages before it: system prompt, few-shot turns
    prefill: str | None = None  # an assistant message after it (lm-eval's gen_prefix), continued

    @property
    def frame(self) -> tuple:
        """What decides the rendering around the method's message (requests are batched by it)."""
        return self.before, self.prefill


def encode(messages: list[dict]) -> str:
    """lm-eval's chat messages -> a context string (see the module docstring)."""
    return CHAT_PREFIX + json.dumps([{"role": m["role"], "content": m["content"]} for m in messages],
                                    ensure_ascii=False)


def parse(context: str) -> Chat:
    """A request context -> Chat. A plain context is one user message; an empty one is refused."""
    if context.startswith(CHAT_PREFIX):
        msgs = [(m["role"], m["content"]) for m in json.loads(context[len(CHAT_PREFIX):])]
        prefill = msgs.pop()[1] if msgs and msgs[-1][0] == "assistant" else None
        users = [i for i, (role, _) in enumerate(msgs) if role == "user"]
        if not users:
            raise ValueError("softcot lm-eval model: a chat request without a user message")
        i = users[-1]
        question, before = msgs[i][1], tuple(msgs[:i])
    else:
        question, before, prefill = context, (), None
    if not question.strip():
        raise ValueError("softcot lm-eval model: an empty or whitespace-only question; expected the question text")
    return Chat(question, before, prefill)


class FramedRenderer:
    """Stands in for `FrozenLLM.render` (message -> prompt text): renders the method's user message
    between the chat's earlier messages and its prefill, with the same pinned template and fixed
    date as `softcot.prompts.render_prompt`. With no frame and prompt=method it is that function."""

    def __init__(self, tokenizer, base, frame: tuple, task: str, prompt: str) -> None:
        self.tok, self.base, (self.before, self.prefill) = tokenizer, base, frame
        self.head = family_of(task).instruction + "\n\nQuestion: "
        self.prompt = prompt

    def __call__(self, message: str) -> str:
        if self.prompt == "task" and message.startswith(self.head):
            message = message[len(self.head):]  # lm-eval's text, then the thought block
        if not self.before and self.prefill is None:
            return self.base(message)
        msgs = [{"role": r, "content": c} for r, c in self.before] + [{"role": "user", "content": message}]
        if not has_chat_template(self.tok):  # plain "User: ... Assistant:" turns
            text = "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in msgs) + "Assistant:"
            return text + (" " + self.prefill if self.prefill else "")
        if self.prefill is not None:
            msgs.append({"role": "assistant", "content": self.prefill})
        return self.tok.apply_chat_template(
            msgs, chat_template=pinned_template(self.tok.chat_template), tokenize=False,
            add_generation_prompt=self.prefill is None, continue_final_message=self.prefill is not None,
            date_string=FIXED_DATE)


@contextlib.contextmanager
def rendering(method, frame: tuple, prompt: str):
    """Within this block the method's LLM prompts are rendered inside `frame` (Chat.frame)."""
    llm = method.llm
    old = llm.render
    if frame == ((), None) and prompt == "method":
        yield  # softcot's own rendering, untouched
        return
    llm.render = FramedRenderer(llm.tok, old, frame, method.cfg.task, prompt)
    try:
        yield
    finally:
        llm.render = old
