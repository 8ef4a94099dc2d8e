"""KV-cached decoding with step boundaries, shared by LightThinker-style compression
(`lightthinker.py`) and hidden-state re-injection (`reinject.py`).

    out, stats = step_decode(llm, embeds, mask, dec, boundary=ids, extra=fn, m=2, drop_step=True)

The LLM decodes token by token on a DynamicCache. When a row emits a boundary token (a token whose
text holds the boundary string, e.g. a newline: one reasoning step is finished), `extra(buf, fire)`
gives m vectors [B, m, d] that are fed right after it (gist tokens, or projected hidden states),
and with `drop_step` the finished step's own tokens are removed from the cache: every layer's
key/value tensors are rebuilt keeping only the kept positions (left padded to the longest row), so
the entries are really gone, not just masked. Position ids count every token ever fed (dropped ones
included), as in training. Rows that do not fire in an iteration feed m masked dummy positions,
removed at the same compaction. `stats` holds per row the peak number of real cached entries,
the number of firings and the generated token count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache

from softcot.config import DecodingConfig
from softcot.llm import sampling_warpers
from softcot.prefix import cache_argument


def boundary_ids(tok, text: str, exclude: list[int]) -> list[int]:
    """Vocabulary ids whose decoded text contains `text` (stop ids excluded)."""
    bad = set(exclude)
    return [i for i in range(len(tok)) if i not in bad and text in tok.decode([i])]


def split_steps(ids: list[int], boundary: set[int]) -> list[list[int]]:
    """Token ids -> segments, each ending right after a boundary token (the last one may not)."""
    segs, cur = [], []
    for t in ids:
        cur.append(t)
        if t in boundary:
            segs.append(cur)
            cur = []
    return segs + ([cur] if cur else [])


def forward(llm, embeds: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache) -> torch.Tensor:
    """One cached forward of the LLM body: hidden states [B, t, d] of the t new positions."""
    return llm.model.base_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True,
                                **{cache_argument(llm.model): cache}).last_hidden_state  # `cache` since transformers 5.x


def compact(cache: DynamicCache, mask: torch.Tensor, tags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop every cache position whose mask is 0 (padding, dummies, compressed steps), keeping the
    rest in order, left padded to the longest row. mask/tags [B, L] -> [B, L'] (L' <= L)."""
    keep = mask.bool()
    counts = keep.sum(1)  # [B]
    L2 = int(counts.max())
    # per row: the kept indices, right-aligned in an [B, L2] index table (left padding)
    order = torch.argsort((~keep).int(), dim=1, stable=True)[:, :L2]  # kept indices first, in order
    shift = L2 - counts  # [B] left padding of each row
    col = torch.arange(L2, device=mask.device)[None] - shift[:, None]  # [B, L2] index into `order`
    valid = col >= 0
    src = torch.gather(order, 1, col.clamp(min=0))  # [B, L2] source cache position
    for layer in cache.layers:
        idx = src[:, None, :, None].expand(-1, layer.keys.shape[1], -1, layer.keys.shape[-1])
        layer.keys = torch.gather(layer.keys, 2, idx) * valid[:, None, :, None]
        layer.values = torch.gather(layer.values, 2, idx) * valid[:, None, :, None]
    return valid.long(), torch.where(valid, torch.gather(tags, 1, src), -1)


@torch.no_grad()
def step_decode(llm, embeds: torch.Tensor, mask: torch.Tensor, dec: DecodingConfig, *, boundary: list[int], extra,
                m: int, drop_step: bool, k_states: int = 1) -> tuple[torch.Tensor, dict]:
    """Decode from left-padded prompt embeddings [B, T, d] / mask [B, T].
    extra(buf [B, k_states, d], fire [B] bool) -> [B, m, d]: what to feed after a boundary token;
    buf holds the last k_states hidden states of fed tokens (prompt included).
    Returns generated ids [B, t] and stats: per row peak_cached (real entries) and fires; the
    batch's peak_physical cache length (padding included)."""
    B = embeds.shape[0]
    dev = embeds.device
    head = llm.model.get_output_embeddings()
    stop = torch.tensor(llm.stop_ids, device=dev)
    bnd = torch.tensor(boundary, device=dev, dtype=torch.long)
    warp = sampling_warpers(dec)
    cache = DynamicCache(config=llm.model.config)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T] positions of real tokens
    h = forward(llm, embeds, mask, pos, cache)  # [B, T, d]
    buf = h[:, -k_states:]  # [B, k, d] last token states
    last = h[:, -1]  # [B, d] predicts the next token
    nxt = pos[:, -1] + 1  # [B]
    tags = torch.full_like(mask, -1)  # [B, L] step number of each cached step token, -1 otherwise
    step = torch.zeros(B, dtype=torch.long, device=dev)  # current step number per row
    peak = mask.sum(1).clone()
    physical = mask.shape[1]
    fires = torch.zeros(B, dtype=torch.long, device=dev)
    done = torch.zeros(B, dtype=torch.bool, device=dev)
    out = []
    for t in range(dec.max_new_tokens):
        logits = head(last).float()  # [B, vocab]
        if t < dec.min_new_tokens:
            logits[:, stop] = float("-inf")
        tok = torch.multinomial(F.softmax(warp(None, logits), -1), 1)[:, 0] if dec.do_sample else logits.argmax(-1)
        tok = torch.where(done, stop[0], tok)  # finished rows repeat a stop token
        out.append(tok)
        fire = torch.isin(tok, bnd) & ~done
        done |= torch.isin(tok, stop)
        if bool(done.all()) or t == dec.max_new_tokens - 1:
            break
        # feed the token: [B, 1]
        mask = torch.cat([mask, (~done).long()[:, None]], 1)  # a stop token is not cached
        tags = torch.cat([tags, step[:, None]], 1)
        last = forward(llm, llm.embed(tok[:, None]), mask, nxt[:, None], cache)[:, -1]  # [B, d]
        nxt = nxt + 1
        buf = torch.cat([buf[:, 1:], last[:, None]], 1)
        peak = torch.maximum(peak, mask.sum(1))
        physical = max(physical, mask.shape[1])
        if not bool(fire.any()) or m == 0:
            continue
        # the finished steps' extras: [B, m, d], real only in firing rows
        ex = extra(buf, fire).to(last.dtype)
        mask = torch.cat([mask, fire.long()[:, None].expand(B, m)], 1)
        tags = torch.cat([tags, tags.new_full((B, m), -1)], 1)
        he = forward(llm, ex, mask, nxt[:, None] + torch.arange(m, device=dev), cache)  # [B, m, d]
        last = torch.where(fire[:, None], he[:, -1], last)
        nxt = nxt + fire.long() * m
        fires += fire.long()
        peak = torch.maximum(peak, mask.sum(1))
        physical = max(physical, mask.shape[1])
        if drop_step:  # the finished step's own tokens leave the cache
            mask = mask * ~(fire[:, None] & (tags == step[:, None]))
        step = step + fire.long()
        mask, tags = compact(cache, mask, tags)
    ids = torch.stack(out, 1)  # [B, t]
    return ids, {"peak_cached": peak.tolist(), "fires": fires.tolist(), "peak_physical": physical}
