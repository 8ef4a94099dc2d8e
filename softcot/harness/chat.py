"""How an lm-eval request's context becomes the input of a softcot method.

Every lm-eval context is turned into a `Chat`: the question (the last user message, what the
method and its assistant read) plus what comes around it, and whether lm-eval rendered it as a chat.

  * no --apply_chat_template: the context is one plain string (few-shot examples included);
  * --apply_chat_template: lm-eval hands `SoftCoTLM.apply_chat_template` its messages (system
    prompt, few-shot turns with --fewshot_as_multiturn, a prefilled assistant start); they travel
    inside the context string as JSON (`encode`, marked by CHAT_PREFIX), so request caching and
    several processes see them too. A context without the mark is a plain one: lm-eval asked for
    no chat template.

Two ways to build the LLM's input from a Chat (model_arg `prompt`):

`prompt=method` (default; `rendering`): the method's user message is softcot's instruction +
"Question: " + the question + thought block through the LLM's chat template (pinned, fixed
date), exactly what `softcot eval` (and a trained projection) uses, with or without the flag;
with it, lm-eval's other messages are rendered around that message.

`prompt=task` (`HFReading`): the LLM reads lm-eval's own prompt as lm-eval's `hf` model reads it.
Without the flag: the context as raw text (no chat template), the method's thought block right
after it. With it: lm-eval's messages through the tokenizer's chat template exactly as
`HFLM.apply_chat_template` renders them (the thought block ends the last user message).
Tokenized as `HFLM.tok_encode` / `tok_batch_encode` do (the tokenizer's own special tokens, none
added to a text that starts with BOS), contexts left-truncated to max_length - max_gen_toks, and
decoded with the prompt's ids visible to the generation config's logits processors (a
`repetition_penalty` penalises prompt tokens as in hf).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging

import torch

from softcot.prompts import FIXED_DATE, has_chat_template, llm_message, pinned_template
from softcot.tasks import family_of

log = logging.getLogger("softcot")

CHAT_PREFIX = "softcot-chat:"  # a context that holds lm-eval's chat messages as JSON


@dataclasses.dataclass(frozen=True)
class Chat:
    question: str  # the last user message: what the method (and its assistant) reads
    before: tuple = ()  # (role, content) messages before it: system prompt, few-shot turns
    prefill: str | None = None  # an assistant message after it (lm-eval's gen_prefix), continued
    templated: bool = False  # lm-eval applied the chat template (--apply_chat_template)

    @property
    def frame(self) -> tuple:
        """What decides prompt=method's rendering around the method's message (batched by it)."""
        return self.before, self.prefill

    def messages(self, user: str) -> list[dict]:
        """lm-eval's messages with `user` as the last user message (the prefill after it)."""
        msgs = [{"role": r, "content": c} for r, c in self.before] + [{"role": "user", "content": user}]
        if self.prefill is not None:
            msgs.append({"role": "assistant", "content": self.prefill})
        return msgs


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
        question, before, templated = msgs[i][1], tuple(msgs[:i]), True
    else:
        question, before, prefill, templated = context, (), None, False
    if not question.strip():
        raise ValueError("softcot lm-eval model: an empty or whitespace-only question; expected the question text")
    return Chat(question, before, prefill, templated)


def plain_chat(messages: list[dict], continue_final: bool) -> str:
    """Plain "User: ... Assistant:" turns for a tokenizer without a chat template."""
    if continue_final:
        *messages, last = messages
        return plain_chat(messages, False) + " " + last["content"]
    return "".join(f"{m['role'].capitalize()}: {m['content']}\n" for m in messages) + "Assistant:"


# ---- prompt=method: softcot's own rendering ---------------------------------------------------------
class FramedRenderer:
    """Stands in for `FrozenLLM.render` (message -> prompt text): renders the method's user message
    between the chat's earlier messages and its prefill, with the same pinned template and fixed
    date as `softcot.prompts.render_prompt`."""

    def __init__(self, tokenizer, frame: tuple) -> None:
        self.tok, (self.before, self.prefill) = tokenizer, frame

    def __call__(self, message: str) -> str:
        msgs = Chat(message, self.before, self.prefill).messages(message)
        if not has_chat_template(self.tok):
            return plain_chat(msgs, self.prefill is not None)
        return self.tok.apply_chat_template(
            msgs, chat_template=pinned_template(self.tok.chat_template), tokenize=False,
            add_generation_prompt=self.prefill is None, continue_final_message=self.prefill is not None,
            date_string=FIXED_DATE)


@contextlib.contextmanager
def rendering(method, frame: tuple):
    """prompt=method: within this block the method's LLM prompts are rendered inside `frame`
    (Chat.frame); a bare question is softcot's own rendering, untouched."""
    llm = method.llm
    if frame == ((), None):
        yield
        return
    old = llm.render
    llm.render = FramedRenderer(llm.tok, frame)
    try:
        yield
    finally:
        llm.render = old


# ---- prompt=task: lm-eval's prompt, read as lm-eval's `hf` model reads it --------------------------
def hf_special_tokens(tokenizer, text: str) -> dict:
    """HFLM's tokenizer call arguments (add_bos_token unset): the tokenizer's own special tokens,
    none when the text already starts with BOS (a chat template that writes it)."""
    bos = getattr(tokenizer, "bos_token", None)
    return {"add_special_tokens": False} if bos and text.startswith(bos) else {}


def hf_encode(tokenizer, text: str) -> list[int]:
    """`HFLM.tok_encode(text)`: the ids lm-eval's hf model reads for a context."""
    return tokenizer.encode(text, **hf_special_tokens(tokenizer, text))


def hf_chat_template(tokenizer, messages: list[dict], continue_final: bool) -> str:
    """`HFLM.apply_chat_template`: the tokenizer's own template as it is (no pinned date), a
    generation header unless the last (assistant) message is continued; a template that refuses
    a system message is retried without it."""
    import jinja2

    if not has_chat_template(tokenizer):
        return plain_chat(messages, continue_final)
    kw = dict(tokenize=False, add_generation_prompt=not continue_final, continue_final_message=continue_final)
    try:
        return tokenizer.apply_chat_template(messages, **kw)
    except jinja2.exceptions.TemplateError:
        log.warning("softcot lm-eval model: the chat template failed; the system message is dropped (as lm-eval's hf)")
        return tokenizer.apply_chat_template([m for m in messages if m["role"] != "system"], **kw)


class HFReading:
    """prompt=task: stands in for FrozenLLM's `prompt_texts`, `encode_prompts` and `generate_ids`
    (see `reading_as_hf`). `chats` maps an Example id to its request's Chat.

      prompt_texts   Example -> lm-eval's context (raw, or its messages through the chat template),
                     the method's thought block after lm-eval's text; with `split_end` the text's
                     trailing blanks are cut off and kept in `trailing` (lm-eval moves them to the
                     continuation of a loglikelihood request). Every text is kept in `texts`.
      encode_prompts hf's ids (hf_encode), each left-truncated to `max_ctx` tokens, left padded
      generate_ids   the LLM's own generate, with the prompt ids beside the embeddings
    """

    def __init__(self, llm, chats: dict, max_ctx: int | None = None, split_end: bool = False) -> None:
        self.llm, self.tok, self.chats = llm, llm.tok, chats
        self.max_ctx, self.split_end = max_ctx, split_end
        self.texts: dict[str, str] = {}
        self.trailing: dict[str, str] = {}
        self.last_ids: torch.Tensor | None = None
        self.generate_ids_of_llm = llm.generate_ids

    def body(self, ex, thoughts: str | None) -> str:
        """lm-eval's text for `ex`, then the method's thought block (if any)."""
        c, llm = self.chats[ex.id], self.llm
        if thoughts is None:
            return c.question
        full = llm_message(ex, thoughts, begin=llm.begin, end=llm.end, block=llm.block, question=llm.with_question)
        base = llm_message(ex, None)  # softcot's instruction + question: what lm-eval's text replaces
        return c.question + full[len(base):] if full.startswith(base) else full  # (a question-free block: as is)

    def prompt_texts(self, examples: list, thoughts) -> list[str]:
        per = thoughts if isinstance(thoughts, list) else [thoughts] * len(examples)
        out = []
        for ex, t in zip(examples, per):
            c, body = self.chats[ex.id], self.body(ex, t)
            text = hf_chat_template(self.tok, c.messages(body), c.prefill is not None) if c.templated else body
            if self.split_end:
                cut = text.rstrip()
                self.trailing[ex.id], text = text[len(cut):], cut
            self.texts[ex.id] = text
            out.append(text)
        return out

    def encode_prompts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [hf_encode(self.tok, t) for t in texts]
        if self.max_ctx and any(len(r) > self.max_ctx for r in rows):
            log.warning("softcot lm-eval model: a context longer than %d tokens is left-truncated (as lm-eval's hf)",
                        self.max_ctx)
            rows = [r[-self.max_ctx:] for r in rows]
        T = max(map(len, rows))
        pad = self.tok.pad_token_id if self.tok.pad_token_id is not None else self.tok.eos_token_id
        ids = torch.tensor([[pad] * (T - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (T - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        dev = self.llm.model.device
        self.last_ids = ids.to(dev)
        return self.last_ids, mask.to(dev)

    def generate_ids(self, embeds: torch.Tensor, mask: torch.Tensor, dec) -> torch.Tensor:
        ids = self.last_ids
        if ids is None or tuple(ids.shape) != tuple(embeds.shape[:2]) or self.llm.prefix is not None:
            return self.generate_ids_of_llm(embeds, mask, dec)
        model = self.llm.model
        real = model.generate
        try:  # the prompt ids travel beside the embeddings (generate then returns them too: cut off)
            model.generate = lambda **kw: real(input_ids=ids, **kw)[:, ids.shape[1]:]
            return self.generate_ids_of_llm(embeds, mask, dec)
        finally:
            del model.generate


@contextlib.contextmanager
def reading_as_hf(method, chats: dict, max_ctx: int | None = None, split_end: bool = False):
    """prompt=task: within this block the method's LLM reads lm-eval's prompts as lm-eval's `hf`
    model does (HFReading); yields the HFReading. The prompt prefix is not reused (hf prefills
    every prompt whole)."""
    llm = method.llm
    reading = HFReading(llm, chats, max_ctx, split_end)
    names = ("prompt_texts", "encode_prompts", "generate_ids", "prefix")
    saved = {k: llm.__dict__.get(k) for k in names if k in llm.__dict__}
    llm.prompt_texts, llm.encode_prompts = reading.prompt_texts, reading.encode_prompts
    llm.generate_ids, llm.prefix = reading.generate_ids, None
    try:
        yield reading
    finally:
        for k in names:
            llm.__dict__.pop(k, None)
        llm.__dict__.update(saved)
