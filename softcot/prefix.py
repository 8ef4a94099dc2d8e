"""Prompt-prefix reuse for the frozen LLM's generation: the keys/values of the prompt start that
every row shares (the chat template's header and the task's instruction) are computed once, at
batch 1, and handed to every row of every later batch of the same evaluation.

Generation prompts are left padded. Reusing the prefix moves each row's padding between the
prefix and the rest, which stays where it was:

    before   [pad pad | p1 .. pk | q1 .. qm]     mask [0 0 | 1 .. 1 | 1 .. 1]
    after    [p1 .. pk | pad pad | q1 .. qm]     mask [1 .. 1 | 0 0 | 1 .. 1]

HF `generate` derives position ids from the mask's running sum, so every real token keeps its
position and attends to the same tokens as before; only the prefill skips k tokens per row. The
prefix is found by comparing input embeddings, so spliced thought vectors (which differ per row)
end it, and nothing about a template or a method is assumed. A prefix is remembered across
calls (batch 1 too: it is compared with the previous call's first row). The LLM must not change
while a `PrefixReuse` lives: `evaluate()` owns one per call (LoRA weights change in training).
"""
from __future__ import annotations

import contextlib
import inspect
from collections import OrderedDict

import torch


def decoder(model):
    """The transformer stack without the LM head (through a peft wrapper too, LoRA layers included)."""
    return model.get_decoder() if hasattr(model, "get_decoder") else model.base_model


def cache_argument(model) -> str | None:
    """The name under which the decoder's forward takes a KV cache (transformers renamed it)."""
    params = inspect.signature(decoder(model).forward).parameters
    return next((k for k in ("cache", "past_key_values") if k in params), None)


def full_attention_cache(model):
    """An empty DynamicCache for `model` if every layer is a plain full-attention layer (the only
    kind whose prefix can be broadcast as is), else None."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    cache = DynamicCache(config=model.config)
    ok = cache.layers and all(type(layer) is DynamicLayer for layer in cache.layers)
    return cache if ok else None


@contextlib.contextmanager
def reusing(holder, enabled: bool = True):
    """Within this block `holder` (a FrozenLLM or an Assistant: `.model`, `.prefix`) reuses the
    prompt prefix its rows share; its weights must not change inside. Yields the PrefixReuse."""
    old, holder.prefix = holder.prefix, PrefixReuse(holder.model) if enabled else None
    try:
        yield holder.prefix
    finally:
        holder.prefix = old


def leading_equal(rows: torch.Tensor) -> int:
    """rows [R, K, d] -> how many leading positions hold the same vector in every row."""
    same = (rows == rows[:1]).all(-1).all(0)  # [K]
    return int(same.long().cumprod(0).sum())


class PrefixReuse:
    def __init__(self, model, min_tokens: int = 8, capacity: int = 8) -> None:
        self.model, self.min_tokens, self.capacity = model, min_tokens, capacity
        self.arg = cache_argument(model)
        self.enabled = self.arg is not None and full_attention_cache(model) is not None
        # prefix embeddings [k, d] and their per-layer (keys, values) [1, H, k, D], newest last
        self.entries: OrderedDict[int, tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]] = OrderedDict()
        self.last_row: torch.Tensor | None = None  # the previous call's first row, real tokens [t, d]
        self.reused_tokens = 0  # prompt tokens per row not prefilled, summed over rows (for reports)

    def prepare(self, embeds: torch.Tensor, mask: torch.Tensor, expand: int = 1) -> tuple[torch.Tensor, dict]:
        """Left-padded embeds [B, T, d] and mask [B, T] -> (mask, generate kwargs) to generate
        from the same embeds. The kwargs carry the prefix cache for B * expand rows (generate's
        num_return_sequences expands the inputs, not a cache); they are empty when nothing is reused."""
        B, T, d = embeds.shape
        lens = mask.sum(1)  # [B]
        kmax = int(lens.min()) - 1  # at least one token per row is prefilled (its logits start decoding)
        if not self.enabled or kmax < self.min_tokens or not bool(mask[:, -1].all()):
            return mask, {}
        start = T - lens  # [B] first real position of each row
        idx = start[:, None] + torch.arange(kmax, device=mask.device)  # [B, kmax]
        heads = embeds.gather(1, idx.unsqueeze(-1).expand(B, kmax, d))  # [B, kmax, d] each row's first kmax real tokens
        k, kv = self._lookup(heads, lambda prefix: prefix)
        self.last_row = heads[0].clone()
        if k == 0:
            return mask, {}
        # The prefix now comes from the cache, so the padding moves behind it: positions < k are the
        # prefix, k .. start+k-1 padding, the rest as before. Only positions >= k are fed to the
        # model, and those hold the same embeddings in both layouts, so `embeds` is left as it is.
        j = torch.arange(T, device=mask.device)[None, :]  # [1, T]
        moved_mask = ((j < k) | (j >= start[:, None] + k)).to(mask.dtype)  # [B, T]
        return moved_mask, {self.arg: self._cache(kv, B * expand)}

    def prepare_right_padded(self, ids: torch.Tensor, mask: torch.Tensor, limit: int, rows: int) -> tuple[int, dict]:
        """Right-padded ids/mask [B, T] of a single forward (the assistant) -> (k, forward kwargs):
        the caller feeds positions k.. only, with `position_ids` and the cache for `rows` rows
        from the kwargs. The prefix ends before position `limit` (the first slot, whose input
        embedding a caller may replace). (0, {}) when nothing is reused."""
        kmax = min(int(mask.sum(1).min()), limit)
        if not self.enabled or kmax < self.min_tokens:
            return 0, {}
        embed = self.model.get_input_embeddings()
        k, kv = self._lookup(ids[:, :kmax, None], lambda prefix: embed(prefix[:, 0]))  # ids as [B, kmax, 1] rows
        self.last_row = ids[0, :kmax, None].clone()
        if k == 0:
            return 0, {}
        pos = torch.arange(k, ids.shape[1], device=ids.device).expand(rows, -1)  # [rows, T - k]: right padding starts at 0
        return k, {"position_ids": pos, self.arg: self._cache(kv, rows)}

    def _cache(self, kv: list, rows: int):
        """A fresh cache holding the prefix for `rows` rows: [1, H, k, D] -> [rows, H, k, D]."""
        cache = full_attention_cache(self.model)
        for layer, (key, val) in enumerate(kv):
            cache.update(key.expand(rows, -1, -1, -1), val.expand(rows, -1, -1, -1), layer)
        self.reused_tokens += kv[0][0].shape[2] * rows
        return cache

    def _lookup(self, heads: torch.Tensor, embed) -> tuple[int, list]:
        """The longest remembered prefix every row starts with, else a new one of >= min_tokens
        shared by every row and the previous call's first row (computed now), else (0, [])."""
        kmax = heads.shape[1]
        for key in sorted(self.entries, key=lambda e: -self.entries[e][0].shape[0]):
            prefix, kv = self.entries[key]
            if prefix.shape[0] <= kmax and bool((heads[:, : prefix.shape[0]] == prefix).all()):
                self.entries.move_to_end(key)
                return prefix.shape[0], kv
        rows = heads
        if self.last_row is not None:
            n = min(kmax, self.last_row.shape[0])
            rows = torch.cat([heads[:, :n], self.last_row[None, :n]])  # [B + 1, n, d]
        elif heads.shape[0] == 1:
            return 0, []  # one row and no earlier call: nothing is known to be shared
        k = leading_equal(rows)
        if k < self.min_tokens:
            return 0, []
        prefix = heads[0, :k].clone()  # [k, d]
        cache = full_attention_cache(self.model)
        with torch.no_grad():  # frozen: the prefix's keys/values are constants, whatever the caller's grad mode
            decoder(self.model)(inputs_embeds=embed(prefix)[None], use_cache=True, **{self.arg: cache})
        kv = [(layer.keys, layer.values) for layer in cache.layers]
        self.entries[id(prefix)] = (prefix, kv)
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return k, kv
