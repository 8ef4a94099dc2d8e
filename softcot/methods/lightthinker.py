"""LightThinker-style compression of the reasoning, alone or after SoftCoT's soft thoughts.

The LLM reasons step by step; after each finished step (a line: a token holding
`lightthinker.boundary`) g gist tokens are fed, and from then on later tokens see the gist tokens
but not the step's own tokens. Generation really drops the compressed steps' key/value entries
from the cache (softcot.methods.stepwise), so the cache holds the prompt, the gists of finished
steps and the current step only.

What trains (the LLM stays frozen otherwise): g gist input embeddings [g, d_llm] and, with
`lightthinker.lora` (default), LoRA adapters on the LLM (section `lora`). A frozen LLM never learned
to read a step out of a gist's key/values; LoRA is the smallest change that lets it (the dev split
compares gist-only training: benchmarks/ideas.py). `softcot-lightthinker` adds SoftCoT's thought
slots to the prompt and trains the projection jointly.

Training is teacher forced in one forward with a 4D attention mask over
[prompt, step 1, gists 1, step 2, gists 2, ..., answer line]: query q may see key k <= q unless k is
a step token of an earlier step than q's (a step's own gists still see it).

    method = build_method(ModelConfig(method="lightthinker", llm=L, lightthinker=LightThinkerConfig(gist_tokens=2)))
    train(method, TrainConfig(output_dir="runs/lt"), train_examples)
    method.generate(examples, DecodingConfig()); method.last_stats  # peak cached entries per row

    softcot train --method softcot-lightthinker --lightthinker-gist-tokens 2 ...

Note: LoRA adapters are injected into the LLM module in place: give each such method its own copy.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from torch import nn

from softcot.data import target_text
from softcot.errors import CheckpointError
from softcot.llm import IGNORE
from softcot.methods.base import Method
from softcot.methods.lora import attach_lora
from softcot.methods.softcot import build_projection
from softcot.methods.stepwise import boundary_ids, split_steps, step_decode

LORA_PREFIX = "lora."


class LightThinker(Method):
    name = "lightthinker"
    description = "LightThinker-style: each finished step -> gist tokens, its KV entries dropped (gists + LoRA train)"
    trains_what = "gist embeddings (+ LoRA)"
    weights_name = "lightthinker.safetensors"

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        lt = cfg.lightthinker
        w = llm.model.get_input_embeddings().weight.detach().float()
        g = torch.Generator().manual_seed(0)
        gist = w[torch.randint(0, w.shape[0], (lt.gist_tokens,), generator=g)].clone()  # [g, d]: token-like scale
        parts: dict[str, nn.Module] = {"gist": nn.Embedding.from_pretrained(gist, freeze=False)}
        if self.needs_assistant:
            parts["projection"] = build_projection(cfg, assistant, llm)
        self.trainable = nn.ModuleDict(parts).to(llm.model.device)
        self.peft = attach_lora(llm.model, cfg) if lt.lora else None
        self.boundary = boundary_ids(llm.tok, lt.boundary, llm.stop_ids)
        self.last_stats: dict | None = None  # of the last generate() call
        self.fade_weight = 0.0  # the curriculum phase's weight (enter_phase); 0 = compressed

    # ---- the prompt (SoftCoT's variant fills thought slots) ---------------------------------
    def thought_count(self, n=None) -> int:
        return 0

    def prompt_embeds(self, examples, n, ids, mask, labels=None, cache=None) -> torch.Tensor:
        return self.llm.embed(ids)  # [B, T, d]

    # ---- parameters: the ModuleDict plus the LoRA tensors -------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        own = [p for p in self.trainable.parameters() if p.requires_grad]  # a caller may freeze a part
        lora = [p for n, p in self.llm.model.named_parameters() if "lora_" in n and p.requires_grad] if self.peft else []
        return own + lora

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        sd = {k: v.detach().cpu().contiguous() for k, v in self.trainable.state_dict().items()}
        if self.peft is not None:
            sd |= {LORA_PREFIX + k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.peft).items()}
        return sd

    def assign_tensors(self, sd: dict[str, torch.Tensor]) -> None:
        self.trainable.load_state_dict({k: v for k, v in sd.items() if not k.startswith(LORA_PREFIX)})
        if self.peft is not None:
            lora = {k[len(LORA_PREFIX):]: v for k, v in sd.items() if k.startswith(LORA_PREFIX)}
            if set_peft_model_state_dict(self.peft, lora).unexpected_keys:
                raise CheckpointError("peft did not place every LoRA tensor")

    # ---- teacher-forced training with the 4D compression mask ---------------------------------
    def train_batch(self, examples, n: int, max_length: int, replies: list[list[int]] | None = None):
        """Right-padded rows [prompt, step 1, gists, step 2, gists, ..., answer]: ids, labels, valid,
        owner (step number; 0 = prompt), kind (0 prompt, 1 step token, 2 gist), gist index [B, T].
        replies: reply token ids per example (default: the training targets)."""
        tok, g, bset = self.llm.tok, self.cfg.lightthinker.gist_tokens, set(self.boundary)
        if replies is None:
            replies = [tok.encode(target_text(ex) + self.llm.eot_text, add_special_tokens=False) for ex in examples]
        cols: list[tuple[list, ...]] = []
        for text, reply in zip(self.prompt_texts(examples, n), replies):
            p = tok.encode(text, add_special_tokens=False)
            r = reply[: max(1, max_length - len(p))]
            ids, lab, own, kind, gi = p[:], [IGNORE] * len(p), [0] * len(p), [0] * len(p), [-1] * len(p)
            for s, seg in enumerate(split_steps(r, bset), 1):
                ids += seg; lab += seg; own += [s] * len(seg); kind += [1] * len(seg); gi += [-1] * len(seg)  # noqa: E702
                if seg[-1] in bset:  # a finished step: its gists (never predicted, label IGNORE)
                    ids += [tok.pad_token_id] * g; lab += [IGNORE] * g; own += [s] * g  # noqa: E702
                    kind += [2] * g; gi += list(range(g))  # noqa: E702
            cols.append((ids, lab, own, kind, gi))
        T = max(len(c[0]) for c in cols)
        pads = (self.llm.tok.pad_token_id, IGNORE, 0, 0, -1)
        dev = self.llm.model.device
        out = [torch.tensor([c[j] + [pads[j]] * (T - len(c[j])) for c in cols], device=dev) for j in range(5)]
        valid = torch.tensor([[1] * len(c[0]) + [0] * (T - len(c[0])) for c in cols], device=dev)
        ids, lab, own, kind, gi = out
        return ids, lab, valid, own, kind, gi

    # ---- the curriculum (lightthinker.fade): phases where compressed steps fade out of view -------
    def training_phases(self) -> list[str]:
        return [f"fade{w:g}" for w in self.cfg.lightthinker.fade_weights()] + ([""] if not self.cfg.lightthinker.fade else ["compressed"])

    def enter_phase(self, index: int) -> None:
        fades = self.cfg.lightthinker.fade_weights()
        self.fade_weight = fades[index] if index < len(fades) else 0.0

    @staticmethod
    def compression_mask(valid, owner, kind, dtype, fade: float = 0.0) -> torch.Tensor:
        """[B, 1, T, T] additive mask: q sees k <= q, k real, and k not a step token of an earlier step
        (with fade > 0, such a k is still seen, its attention weight scaled by `fade`: log(fade) added)."""
        T = valid.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=valid.device).tril()  # [q, k]
        hidden = (kind[:, None, :] == 1) & (owner[:, None, :] < owner[:, :, None])  # [B, q, k]
        ok = causal[None] & valid[:, None, :].bool()
        neg = torch.finfo(dtype).min
        bias = torch.where(hidden, math.log(fade) if fade > 0 else neg, 0.0)  # [B, q, k]
        return torch.where(ok, bias, neg).to(dtype)[:, None]

    @staticmethod
    def tail_targets(ids, owner, kind, gi, g: int, content: torch.Tensor | None = None) -> torch.Tensor:
        """[B, T] targets of the gists' own loss (IGNORE elsewhere): the hidden state of gist j < g-1
        of step s predicts the (g-1-j)-th last content token of step s, written as the label of gist
        j+1 (labels are read shifted by one). A step's last tokens are where it states its result
        ("... = 22.\n"), which the next step must read from the gists alone. `content` [vocab] marks
        the tokens that hold a letter or digit: the trailing "." and the boundary are skipped (they
        are the same in every step, so a target on them teaches the gists nothing)."""
        out = torch.full_like(ids, IGNORE)
        for b in range(ids.shape[0]):
            for s in owner[b][kind[b] == 2].unique().tolist():
                seg = ids[b][(kind[b] == 1) & (owner[b] == s)].tolist()[:-1]  # the step's tokens before its boundary
                while content is not None and seg and not bool(content[seg[-1]]):
                    seg.pop()
                where = ((kind[b] == 2) & (owner[b] == s)).nonzero()[:, 0]  # its g gist positions
                for j in range(1, g):
                    k = len(seg) - g + j  # the last g-1 content tokens, in order
                    if k >= 0:
                        out[b, where[j]] = seg[k]
        return out

    def content_tokens(self) -> torch.Tensor:
        """[vocab] bool: the token's text holds a letter or digit (computed once per method)."""
        if getattr(self, "_content", None) is None:
            tok = self.llm.tok
            n = max(len(tok), self.llm.model.get_output_embeddings().weight.shape[0])
            self._content = torch.tensor([any(c.isalnum() for c in tok.decode([i])) if i < len(tok) else False
                                          for i in range(n)])
        return self._content

    def loss(self, examples, n_thoughts=None, max_length=1024, cache=None) -> torch.Tensor:
        h, labels, tails = self.hidden(examples, self.thought_count(n_thoughts), max_length, cache=cache,
                                       tails=self.cfg.lightthinker.tail_loss > 0)
        head = self.llm.model.get_output_embeddings()
        target = labels[:, 1:]
        sel = target != IGNORE
        loss = F.cross_entropy(head(h[:, :-1][sel]).float(), target[sel])
        if tails is not None:  # the gists' own target: hold the step's result
            t = tails[:, 1:]
            sel = t != IGNORE
            if bool(sel.any()):
                loss = loss + self.cfg.lightthinker.tail_loss * F.cross_entropy(head(h[:, :-1][sel]).float(), t[sel])
        return loss

    def hidden(self, examples, n: int, max_length: int = 1024, replies=None, cache=None, tails: bool = False):
        """Last-layer states [B, T, d] under the compression mask, the labels [B, T] and (with
        `tails`) the gists' own targets [B, T]."""
        ids, labels, valid, owner, kind, gi = self.train_batch(examples, n, max_length, replies)  # [B, T]
        embeds = self.prompt_embeds(examples, n, ids, valid, labels, cache)  # [B, T, d]
        gist = self.trainable["gist"](gi.clamp(min=0)).to(embeds.dtype)  # [B, T, d]
        embeds = torch.where((kind == 2)[..., None], gist, embeds)  # gist positions get the gist vectors
        pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)  # right padded: 0.. per row
        fade = self.fade_weight if torch.is_grad_enabled() else 0.0  # the curriculum acts on training steps only
        mask = self.compression_mask(valid, owner, kind, embeds.dtype, fade)
        h = self.llm.model.base_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos).last_hidden_state
        t = self.tail_targets(ids, owner, kind, gi, self.cfg.lightthinker.gist_tokens, self.content_tokens()) if tails else None
        return h, labels, t

    def teacher_forced(self, examples, n: int, max_length: int = 1024, replies=None, cache=None):
        """Logits [M, vocab] of every reply token under the compression mask, and the tokens [M]."""
        h, labels, _ = self.hidden(examples, n, max_length, replies, cache)
        target = labels[:, 1:]
        sel = target != IGNORE
        return self.llm.model.get_output_embeddings()(h[:, :-1][sel]), target[sel]  # reply positions only

    # ---- generation: drop each finished step's KV entries ---------------------------------------
    @torch.no_grad()
    def generate(self, examples, dec, n_thoughts=None, thought_cache=None):
        n = self.thought_count(n_thoughts)
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n))  # left padded [B, T]
        embeds = self.prompt_embeds(examples, n, ids, mask, cache=thought_cache)  # [B, T, d]
        k = dec.num_samples
        embeds, mask = embeds.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)  # [B*k, ...]
        gist = self.trainable["gist"].weight  # [g, d]
        out, self.last_stats = step_decode(
            self.llm, embeds, mask, dec, boundary=self.boundary, m=gist.shape[0], drop_step=True,
            extra=lambda buf, fire: gist[None].expand(buf.shape[0], -1, -1))  # [B*k, g, d]
        self.last_ids = out  # [B*k, t] generated ids (tests)
        rows = self.llm.completions(out, out.shape[0], 1)
        return [[c for row in rows[i * k:(i + 1) * k] for c in row] for i in range(len(examples))]


class SoftCoTLightThinker(LightThinker):
    name = "softcot-lightthinker"
    description = "SoftCoT's soft thoughts + LightThinker-style step compression (projection, gists, LoRA train)"
    trains_what = "projection + gist embeddings (+ LoRA)"
    needs_assistant = True
    cacheable_thoughts = True

    def thought_count(self, n=None) -> int:
        return n or self.cfg.n_thoughts

    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))

    def prompt_embeds(self, examples, n, ids, mask, labels=None, cache=None):
        states = cache.get(examples, n) if cache is not None else self.assistant.soft_thoughts(examples, n)
        thoughts = self.trainable["projection"](states)  # [B, n, d_a] -> [B, n, d_llm]
        return self.llm.splice(self.llm.embed(ids), ids, mask, thoughts, labels)  # slots filled, [B, T, d]
