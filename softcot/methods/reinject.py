"""Periodic re-injection of the LLM's own hidden states at step boundaries.

While the frozen LLM reasons (zero-shot CoT prompt), each time it finishes a step (emits a token
holding `reinject.boundary`, a newline by default) the last k last-layer hidden states (after the
final norm; the step's last k tokens) go through a trainable projection d_llm -> d_llm (the
`projection` section: linear, norm `match` by default) and are fed back as k soft input tokens
before reasoning continues. Only the projection trains.

Training is teacher forced on the reasoning traces with the exact generation path: the prompt,
then step by step (all rows batched, KV cached, gradients flow through the cache) each step's
tokens and, after a finished step, the projected states of that very pass; the loss is the
next-token loss of the reply tokens (the soft tokens are never predicted).

    method = build_method(ModelConfig(method="reinject", llm=L, reinject=ReinjectConfig(states=1)))
    train(method, TrainConfig(output_dir="runs/reinject"), train_examples)
    method.generate(examples, DecodingConfig()); method.last_stats["fires"]  # re-injections per row

    softcot train --method reinject --reinject-states 1 ...
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache

from softcot.data import target_text
from softcot.methods.base import Method
from softcot.methods.stepwise import boundary_ids, forward, split_steps, step_decode
from softcot.projection import Projection


class Reinject(Method):
    name = "reinject"
    description = "the LLM's last hidden states of each finished step -> trainable projection -> fed back as soft tokens"
    trains_what = "projection (LLM -> LLM)"
    weights_name = "projection.safetensors"

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        p, d = cfg.projection, llm.hidden_size
        self.trainable = Projection(d, d, kind=p.kind, hidden=p.hidden, bias=p.bias, norm=p.norm,
                                    target_rms=llm.embedding_rms).to(llm.model.device)
        self.k = cfg.reinject.states
        self.boundary = boundary_ids(llm.tok, cfg.reinject.boundary, llm.stop_ids)
        self.last_stats: dict | None = None

    def thought_count(self, n=None) -> int:
        return 0

    def inject(self, states: torch.Tensor) -> torch.Tensor:
        return self.trainable(states).to(self.llm.model.dtype)  # [B, k, d] -> [B, k, d]

    def loss(self, examples, n_thoughts=None, max_length=1024, cache=None) -> torch.Tensor:
        replies = [self.llm.tok.encode(target_text(ex) + self.llm.eot_text, add_special_tokens=False) for ex in examples]
        logits, targets = self.teacher_forced(examples, replies, max_length)
        return F.cross_entropy(logits.float(), targets)

    def teacher_forced(self, examples, replies: list[list[int]], max_length: int = 1024):
        """Logits [M, vocab] of every reply token (M of them, segment-major order) and the tokens [M]."""
        llm, k = self.llm, self.k
        ids, mask = llm.encode_prompts(self.prompt_texts(examples, 0))  # left padded [B, T]
        B, dev = ids.shape[0], ids.device
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        kv = DynamicCache(config=llm.model.config)
        h = forward(llm, llm.embed(ids), mask, pos, kv)  # [B, T, d]
        buf, pending, nxt = h[:, -k:], h[:, -1], pos[:, -1] + 1  # [B, k, d], [B, d], [B]
        bnd = torch.tensor(self.boundary, device=dev, dtype=torch.long)
        rows = [split_steps(r[: max(1, max_length - ids.shape[1])], set(self.boundary)) for r in replies]
        hs, tg = [], []
        for s in range(max(map(len, rows))):
            seg = [r[s] if s < len(r) else [] for r in rows]
            L = max(map(len, seg))
            sid = torch.tensor([x + [llm.tok.pad_token_id] * (L - len(x)) for x in seg], device=dev)  # [B, L]
            smask = torch.tensor([[1] * len(x) + [0] * (L - len(x)) for x in seg], device=dev)
            lens = smask.sum(1)
            mask = torch.cat([mask, smask], 1)
            hseg = forward(llm, llm.embed(sid), mask, nxt[:, None] + torch.arange(L, device=dev), kv)  # [B, L, d]
            has = lens > 0
            hs += [pending[has], hseg[:, :-1][smask[:, 1:].bool()]]  # pending -> first token; j -> j+1
            tg += [sid[has, 0], sid[:, 1:][smask[:, 1:].bool()]]
            nxt = nxt + lens
            buf = torch.stack([torch.cat([buf[b], hseg[b, : int(lens[b])]])[-k:] for b in range(B)])  # last k token states
            end = (lens - 1).clamp(min=0)
            pending = hseg[torch.arange(B), end]
            fire = has & torch.isin(sid[torch.arange(B), end], bnd)
            if bool(fire.any()):  # the finished step's states, projected, fed back: [B, k, d]
                mask = torch.cat([mask, fire.long()[:, None].expand(B, k)], 1)
                he = forward(llm, self.inject(buf), mask, nxt[:, None] + torch.arange(k, device=dev), kv)
                nxt = nxt + fire.long() * k
                pending = torch.where(fire[:, None], he[:, -1], pending)
        return llm.model.get_output_embeddings()(torch.cat(hs)), torch.cat(tg)  # reply positions only

    @torch.no_grad()
    def generate(self, examples, dec, n_thoughts=None, thought_cache=None):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, 0))  # left padded [B, T]
        k = dec.num_samples
        ids, mask = ids.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)
        out, self.last_stats = step_decode(self.llm, self.llm.embed(ids), mask, dec, boundary=self.boundary, m=self.k,
                                           drop_step=False, k_states=self.k, extra=lambda buf, fire: self.inject(buf))
        self.last_ids = out  # [B*k, t] generated ids (tests)
        rows = self.llm.completions(out, out.shape[0], 1)
        return [[c for row in rows[i * k:(i + 1) * k] for c in row] for i in range(len(examples))]
