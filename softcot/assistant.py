"""The frozen assistant: reads [instruction, question, N placeholders] and returns its hidden
states at the placeholder slots, the "soft thoughts" [B, N, d_assistant].

    asst = Assistant(model, tokenizer)
    thoughts = asst.soft_thoughts(examples, n=4)        # [B, 4, d_assistant]
    hints = asst.write_hints(examples, max_new_tokens=64)  # Assist-CoT: hard-text hints

Only the base model runs (no LM head: its logits would be thrown away, trap 4). Slots are found
by token id in the tokenized prompt, never by template arithmetic (trap 3). Prompts are right
padded so every row's positions start at 0, whatever the model's position-id handling.
"""
from __future__ import annotations

import functools
import hashlib

import torch

from softcot.data import Example
from softcot.frozen import contiguous_lm_head, model_device, resolve_placeholder, single_token_id
from softcot.prefix import PrefixReuse
from softcot.prompts import Renderer, assistant_message, end_of_turn_text


class Assistant:
    def __init__(self, model, tokenizer, *, placeholder: str | None = None, layer: int = -1) -> None:
        self.model, self.tok, self.layer = model, tokenizer, layer
        contiguous_lm_head(model)  # write_hints generates through the head (see frozen.py)
        self.render = Renderer(tokenizer)  # memoised chat-template rendering
        self.placeholder, self.placeholder_id = resolve_placeholder(tokenizer, placeholder, "assistant")
        self.hidden_size: int = model.get_input_embeddings().weight.shape[1]
        self.prefix: PrefixReuse | None = None  # set by `prefix.reusing()` (evaluate owns one per call)
        n_layers = model.config.get_text_config().num_hidden_layers
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(f"assistant_layer {layer} out of range for a {n_layers}-layer assistant (use -1..{n_layers})")

    def prompts(self, examples: list[Example], n: int | None) -> list[str]:
        ph = self.placeholder * n if n else None
        return [self.render(assistant_message(ex, placeholders=ph)) for ex in examples]

    def encode(self, texts: list[str], padding_side: str) -> tuple[torch.Tensor, torch.Tensor]:
        self.tok.padding_side = padding_side
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        dev = model_device(self.model)
        return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)

    @functools.cached_property
    def embedding_rms(self) -> float:
        """Mean RMS of the assistant's token embeddings (scale of SoftCoT++'s [INI] noise)."""
        w = self.model.get_input_embeddings().weight.detach().float()
        return float(w.pow(2).mean(-1).sqrt().mean())

    def soft_thoughts(self, examples: list[Example], n: int, *, fill: torch.Tensor | None = None,
                      repeat: int = 1) -> torch.Tensor:
        """Hidden states at the n placeholder slots: [B * repeat, n, d_assistant], model dtype.

        fill [repeat, d_a]: replaces the slots' input embeddings, one vector per repeat (SoftCoT++'s
        [INI]_k; row b*repeat + k is example b with fill k). Runs under the caller's grad mode, so
        gradients reach `fill` when it requires them (the weights stay frozen)."""
        ids, mask = self.encode(self.prompts(examples, n), "right")  # [B, T]
        slots = (ids == self.placeholder_id) & mask.bool()  # [B, T]
        counts = slots.sum(1)
        if not bool((counts == n).all()):
            bad = int((counts != n).nonzero()[0, 0])
            raise ValueError(
                f"example {examples[bad].id!r}: found {int(counts[bad])} assistant placeholder tokens "
                f"{self.placeholder!r}, expected {n} (does the question contain that token?)"
            )
        # Causal assistant: tokens after the last slot (the template's end of turn) cannot change
        # the slot states, so they are not computed. [B, T] -> [B, T'], T' = last slot + 1.
        if n > 0:
            cut = int(slots.any(0).nonzero().max()) + 1
            ids, mask, slots = ids[:, :cut], mask[:, :cut], slots[:, :cut]
        inputs: dict = {"input_ids": ids}
        if fill is not None or repeat > 1:
            emb = self.model.get_input_embeddings()(ids)  # [B, T, d_a]
            emb, mask, slots = (x.repeat_interleave(repeat, 0) for x in (emb, mask, slots))  # [B*r, T, ...]
            if fill is not None:
                per_row = fill.to(emb.dtype).repeat(len(examples), 1)  # [B*r, d_a]: row b*r+k -> fill k
                emb = torch.where(slots.unsqueeze(-1), per_row.unsqueeze(1), emb)
            inputs = {"inputs_embeds": emb}
        k, reuse = (0, {}) if self.prefix is None or n == 0 else self.prefix.prepare_right_padded(
            ids, mask, limit=int(slots.float().argmax(1).min()), rows=mask.shape[0])
        if k:  # the shared prefix's keys/values are cached: feed positions k.. only
            inputs = {name: x[:, k:] for name, x in inputs.items()}
            slots = slots[:, k:]
        want_all = self.layer != -1
        out = self.model.base_model(**inputs, **reuse, attention_mask=mask, output_hidden_states=want_all)
        h = out.hidden_states[self.layer] if want_all else out.last_hidden_state  # [B*r, T, d_a]
        # Boolean indexing walks rows in order, so the slots come back as [B*r*n, d_a] -> [B*r, n, d_a].
        return h[slots].view(len(examples) * repeat, n, -1)

    @torch.no_grad()
    def write_hints(self, examples: list[Example], max_new_tokens: int = 64) -> list[str]:
        """Assist-CoT: the assistant writes a short hard-text hint (greedy) for each question."""
        ids, mask = self.encode(self.prompts(examples, None), "left")
        stop = {i for i in [self.tok.eos_token_id, single_token_id(self.tok, end_of_turn_text(self.tok))] if i is not None}
        gen_eos = self.model.generation_config.eos_token_id
        stop |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=sorted(stop), pad_token_id=self.tok.pad_token_id,
            temperature=None, top_p=None, top_k=None,
        )
        return [t.strip() for t in self.tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)]


class ThoughtCache:
    """The frozen assistant's soft thoughts, computed once per example: owned by a training run
    (never by a method, so nothing leaks into evaluation). Keyed by content (the assistant's
    rendered prompt without slots, and the layer), so two files that reuse an id cannot collide.

    The slots come last in the assistant's message and the assistant is causal, so the first n
    slot states of a prompt with N >= n slots are exactly the states of a prompt with n slots:
    one entry computed at the largest N serves every smaller N (mixed-N training)."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant
        self.store: dict[str, torch.Tensor] = {}  # key -> [N_max, d_a]

    def key(self, prompt: str) -> str:
        return hashlib.sha1(f"{self.assistant.layer}|{prompt}".encode()).hexdigest()

    @torch.no_grad()
    def get(self, examples: list[Example], n: int) -> torch.Tensor:
        """[B, n, d_a] thoughts, computing only the examples not seen yet at >= n slots."""
        keys = [self.key(p) for p in self.assistant.prompts(examples, None)]
        missing = [(k, ex) for k, ex in zip(keys, examples) if k not in self.store or len(self.store[k]) < n]
        if missing:
            fresh = self.assistant.soft_thoughts([ex for _, ex in missing], n)
            self.store.update((k, t) for (k, _), t in zip(missing, fresh))
        return torch.stack([self.store[k][:n] for k in keys])

    def fill(self, examples: list[Example], n: int, batch_size: int) -> None:
        """Compute every example's thoughts ahead of the first epoch, batched."""
        for i in range(0, len(examples), batch_size):
            self.get(examples[i : i + batch_size], n)
