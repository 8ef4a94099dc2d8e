"""The frozen LLM: prompts, the thought-slot splice, the reply-only loss, and batched decoding.

    llm = FrozenLLM(model, tokenizer)
    ids, mask = llm.encode_prompts(texts)                  # left padded, for generation
    embeds = llm.splice(llm.embed(ids), ids, mask, thoughts)  # thoughts: [B, N, d_llm]
    completions = llm.generate(embeds, mask, DecodingConfig(max_new_tokens=256))

Every method (SoftCoT, zero-shot CoT, CoT-Unk, Assist-CoT, prompt tuning, ...) ends here, so the
loss and the decoding exist once.
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from softcot.config import DecodingConfig
from softcot.data import Example
from softcot.frozen import contiguous_lm_head, model_device, resolve_markers, resolve_placeholder, single_token_id
from softcot.prefix import PrefixReuse
from softcot.prompts import Renderer, end_of_turn_text, llm_message

IGNORE = -100


class Completion(str):
    """A generated text that also knows how many tokens were generated for it (counted on the
    generated ids up to the first stop token, never by re-tokenising the text)."""

    tokens: int

    def __new__(cls, text: str, tokens: int) -> "Completion":
        obj = super().__new__(cls, text)
        obj.tokens = tokens
        return obj


def sampling_warpers(dec: DecodingConfig):
    """The logits warpers of `dec` (temperature, top-k, top-p) for methods with their own cached
    decoding loop (Coconut, the step-wise decoders); HF `generate` builds the same ones itself."""
    from transformers.generation.logits_process import (LogitsProcessorList, TemperatureLogitsWarper,
                                                        TopKLogitsWarper, TopPLogitsWarper)

    warp = LogitsProcessorList()
    if dec.do_sample:
        warp.append(TemperatureLogitsWarper(dec.temperature))
        if dec.top_k:
            warp.append(TopKLogitsWarper(dec.top_k))
        if dec.top_p < 1.0:
            warp.append(TopPLogitsWarper(dec.top_p))
    return warp


def count_until_stop(ids: list[int], stop_ids: set[int]) -> int:
    """Generated tokens before the first stop id (padding after a stop is not generation)."""
    return next((i for i, t in enumerate(ids) if t in stop_ids), len(ids))


class FrozenLLM:
    def __init__(self, model, tokenizer, *, placeholder: str | None = None, begin: str | None = None,
                 end: str | None = None, block: str = "preamble", with_question: bool = True) -> None:
        self.model, self.tok = model, tokenizer
        contiguous_lm_head(model)  # a frozen head on a sliced input is copied per row on CPU
        self.placeholder, self.placeholder_id = resolve_placeholder(tokenizer, placeholder, "llm")
        self.begin, self.end = resolve_markers(tokenizer, begin, end)
        self.block, self.with_question = block, with_question
        self.render = Renderer(tokenizer)
        self._tokenized: dict[tuple, tuple[list[int], list[int]]] = {}  # (prompt, target, max_len) -> ids
        self.eot_text = end_of_turn_text(tokenizer)
        self.hidden_size: int = model.get_input_embeddings().weight.shape[1]
        self.stop_ids = self._stop_ids()
        self.gradient_checkpointing = False
        self.prefix: PrefixReuse | None = None  # set by `prefix.reusing()` (evaluate owns one per call)

    def _stop_ids(self) -> list[int]:
        """End-of-turn ids: the generation config's EOS list, the tokenizer's EOS, and the
        template's end-of-turn token (Llama-3 stops on <|eot_id|>, Qwen on <|im_end|>)."""
        ids = self.model.generation_config.eos_token_id
        ids = set(ids if isinstance(ids, list) else [] if ids is None else [ids])
        ids |= {i for i in [self.tok.eos_token_id, single_token_id(self.tok, self.eot_text)] if i is not None}
        return sorted(ids)

    # ---- prompts -------------------------------------------------------------------------
    def slots(self, n: int) -> str:
        return self.placeholder * n

    def prompt_texts(self, examples: list[Example], thoughts: list[str | None] | str | None) -> list[str]:
        """Rendered prompts. `thoughts` fills each thought block (one string for all, one per
        example, or None for no block). Renders are memoised by message: a training run renders
        each example's chat template once, not once per epoch."""
        per = thoughts if isinstance(thoughts, list) else [thoughts] * len(examples)
        out = []
        for ex, t in zip(examples, per):
            msg = llm_message(ex, t, begin=self.begin, end=self.end, block=self.block,
                              question=self.with_question or t is None)
            out.append(self.render(msg))
        return out

    def encode_prompts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt ids and mask [B, T] for generation."""
        self.tok.padding_side = "left"
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        dev = model_device(self.model)
        return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)

    def encode_train(self, texts: list[str], targets: list[str], max_length: int) -> tuple[torch.Tensor, ...]:
        """Right-padded [prompt + target + end-of-turn] ids, mask and labels [B, T]; labels are
        IGNORE on the prompt (thought slots included) and on padding. Token ids are memoised per
        (prompt, target): each example is tokenised once per training run."""
        rows = [self._train_ids(text, target, max_length) for text, target in zip(texts, targets)]
        B, T = len(rows), max(len(p) + len(r) for p, r in rows)
        ids = torch.full((B, T), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        lab = torch.full((B, T), IGNORE, dtype=torch.long)
        for i, (p, r) in enumerate(rows):
            n = len(p) + len(r)
            ids[i, :n] = torch.tensor(p + r)
            mask[i, :n] = 1
            lab[i, len(p) : n] = torch.tensor(r)
        dev = model_device(self.model)
        return ids.to(dev), mask.to(dev), lab.to(dev)

    def _train_ids(self, text: str, target: str, max_length: int) -> tuple[list[int], list[int]]:
        key = (text, target, max_length)
        if key not in self._tokenized:
            p = self.tok.encode(text, add_special_tokens=False)
            r = self.tok.encode(target + self.eot_text, add_special_tokens=False)
            self._tokenized[key] = (p, r[: max(1, max_length - len(p))])  # truncate the reply, never the slots
        return self._tokenized[key]

    # ---- the splice ------------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(ids)  # [B, T, d_llm]

    @functools.cached_property
    def embedding_rms(self) -> float:
        """Mean RMS of the token embeddings: the scale a vector placed in a slot should have."""
        w = self.model.get_input_embeddings().weight.detach().float()
        return float(w.pow(2).mean(-1).sqrt().mean())

    def slot_mask(self, ids: torch.Tensor, mask: torch.Tensor, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T] bool, True at the n placeholder slots of each row. Padding is excluded, and with
        `labels` the reply too, so a placeholder that doubles as the pad or EOS token (GPT-2 has
        no spare token) is still safe."""
        slots = (ids == self.placeholder_id) & mask.bool()
        if labels is not None:
            slots &= labels == IGNORE  # slots live in the prompt, never in the reply
        counts = slots.sum(1)
        if not bool((counts == n).all()):
            raise ValueError(
                f"found {counts.tolist()} LLM placeholder tokens {self.placeholder!r} per row, expected {n} "
                "(does a question contain that token?)"
            )
        return slots

    def splice(self, embeds: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, thoughts: torch.Tensor,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """Replace the slot embeddings by `thoughts`.
        embeds [B, T, d_llm], ids/mask [B, T], thoughts [B, N, d_llm] -> [B, T, d_llm]."""
        B, N, d = thoughts.shape
        slots = self.slot_mask(ids, mask, N, labels)  # [B, T], N True per row, in order
        # masked_scatter fills the True positions row by row from thoughts viewed as [B*N, d];
        # the cast to the LLM's dtype happens here and only here.
        return embeds.masked_scatter(slots.unsqueeze(-1), thoughts.reshape(B * N, d).to(embeds.dtype))

    # ---- training loss -------------------------------------------------------------------------
    def reply_loss(self, embeds: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean next-token loss over the reply tokens only. The LM head runs on those positions
        alone, not on the whole [B, T, vocab] (trap 4)."""
        # HF checkpoints layers only in train mode; instruct LMs have attention dropout 0, so
        # train mode changes nothing else. Back to eval right after.
        self.model.train(self.gradient_checkpointing)
        try:
            h = self.model.base_model(inputs_embeds=embeds, attention_mask=mask).last_hidden_state  # [B, T, d]
        finally:
            self.model.eval()
        target = labels[:, 1:]  # position t predicts token t+1
        sel = target != IGNORE  # [B, T-1]
        logits = self.model.get_output_embeddings()(h[:, :-1][sel])  # [M, vocab]
        return F.cross_entropy(logits.float(), target[sel])

    def enable_gradient_checkpointing(self) -> None:
        """Checkpoint the frozen LLM's layers: the gradient still flows through every layer to the
        spliced input embeddings (non-reentrant checkpointing needs no grad-requiring inputs)."""
        kwargs = {"use_reentrant": False}
        if hasattr(self.model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            self.model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            self.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        self.gradient_checkpointing = True

    # ---- decoding --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, embeds: torch.Tensor, mask: torch.Tensor, dec: DecodingConfig) -> list[list[Completion]]:
        """Batched decoding from input embeddings; returns dec.num_samples completions per row
        (only the new text, stopped at the end-of-turn tokens)."""
        return self.completions(self.generate_ids(embeds, mask, dec), embeds.shape[0], dec.num_samples)

    @torch.no_grad()
    def generate_ids(self, embeds: torch.Tensor, mask: torch.Tensor, dec: DecodingConfig) -> torch.Tensor:
        """Left-padded embeds [B, T, d] and mask [B, T] -> new ids [B * num_samples, new]."""
        cache = {}
        if self.prefix is not None:
            mask, cache = self.prefix.prepare(embeds, mask, dec.num_samples)
        sampling = dict(temperature=dec.temperature, top_p=dec.top_p, top_k=dec.top_k or None) if dec.do_sample else dict(
            temperature=None, top_p=None, top_k=None
        )
        return self.model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=dec.max_new_tokens,
            min_new_tokens=dec.min_new_tokens or None,
            do_sample=dec.do_sample,
            num_return_sequences=dec.num_samples,
            eos_token_id=self.stop_ids,
            pad_token_id=self.tok.pad_token_id,
            **sampling,
            **cache,
        )  # [B * num_samples, new] (inputs_embeds alone: only new tokens come back)

    def completions(self, out: torch.Tensor, rows: int, k: int) -> list[list[Completion]]:
        """Generated ids [rows * k, new] -> k Completions per row, cut at the first stop id."""
        stops = set(self.stop_ids)
        texts = []
        for seq in out.tolist():
            n = count_until_stop(seq, stops)
            texts.append(Completion(self.tok.decode(seq[:n], skip_special_tokens=True), n))
        return [texts[i * k : (i + 1) * k] for i in range(rows)]
