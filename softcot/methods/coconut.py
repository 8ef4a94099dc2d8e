"""Coconut (continuous thoughts, LoRA on the LLM): after the prompt and a begin marker, the LLM's
last hidden state (after the final norm) is fed back as the next input embedding, `stage * c`
times, then an end marker and the rest of the reply follow as ordinary tokens.

    method = build_method(ModelConfig(method="coconut", llm="large",
                                      coconut=CoconutConfig(thoughts_per_step=2, max_stages=3)))
    train(method, TrainConfig(output_dir="runs/coconut", epochs=3), train_examples)  # every stage
    method.generate(examples, DecodingConfig(max_new_tokens=256))   # at the last stage trained

Curriculum (stage k, `method.enter_phase(k)`): the target's first min(k, #steps) "## Step i" lines
are dropped and k*c continuous thoughts stand in their place; every example of a stage gets the
same k*c thoughts (as Coconut's "pad to max"), which keeps the batch rectangular, and inference
uses the same count. The stages are the method's `training_phases()`: `softcot.train.train` runs
stages 0..coconut.max_stages, each in `{output_dir}/stage{k}` with a fresh optimizer (as in
Coconut); the LoRA weights carry over. `n_thoughts` arguments are ignored: the stage decides.

Batched and cached: the left-padded prefix runs once, then each thought is one forward of one
position with its KV cache (the prefix is never recomputed); the attention mask grows by one
column per thought and position ids count real tokens per row, so left padding changes nothing.
Gradients flow through the cache (DynamicCache concatenates) to every thought. The same path
decodes (own loop: greedy or sampled, stop on end-of-turn). The LLM runs in eval mode here, so
TrainConfig.gradient_checkpointing has no effect on Coconut (HF checkpoints only in train mode,
where it also turns the cache off).
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from transformers.cache_utils import DynamicCache

from softcot.config import DecodingConfig
from softcot.data import Example, target_text
from softcot.errors import ConfigError
from softcot.llm import IGNORE, Completion, sampling_warpers
from softcot.prefix import cache_argument
from softcot.methods.lora import LoRA


def stage_target(example: Example, stage: int) -> str:
    """The target with its first min(stage, #steps) step lines removed (later steps keep their
    numbers; the final answer line always stays)."""
    steps = [s.strip() for s in example.steps or [] if s and s.strip()]
    full = target_text(example)
    k = min(stage, len(steps))
    if k == 0:
        return full
    head = target_text(dataclasses.replace(example, steps=steps[:k]))  # steps 1..k + answer line
    head = head.rsplit("\n", 1)[0] + "\n"  # steps 1..k only
    assert full.startswith(head)
    return full[len(head):]


class Coconut(LoRA):
    name = "coconut"
    description = "Coconut: LoRA LLM feeds its last hidden state back as continuous thoughts (staged curriculum)"
    trains_what = "LoRA, staged"

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        self.stage = cfg.coconut.stage  # run-time state: the trainer's phases move it, save() records it

    # ---- the curriculum: one training phase per stage ------------------------------------------
    def training_phases(self) -> list[str]:
        return [f"stage{k}" for k in range(self.cfg.coconut.max_stages + 1)]

    def enter_phase(self, index: int) -> None:
        if not 0 <= index <= self.cfg.coconut.max_stages:
            raise ConfigError(f"coconut stage must be in 0..{self.cfg.coconut.max_stages}, got {index}")
        self.stage = index

    def thought_count(self, n=None) -> int:
        return self.n_latent  # the stage decides, whatever N is asked for

    def saved_config(self):
        cfg = super().saved_config()
        return dataclasses.replace(cfg, coconut=dataclasses.replace(cfg.coconut, stage=self.stage))

    @property
    def n_latent(self) -> int:
        return self.stage * self.cfg.coconut.thoughts_per_step

    # ---- the continuous-thought loop ---------------------------------------------------------
    def _forward(self, embeds, mask, pos, cache) -> torch.Tensor:
        """One cached forward of the LLM body: new positions' last hidden states [B, t, d]."""
        out = self.llm.model.base_model(inputs_embeds=embeds, attention_mask=mask, position_ids=pos, use_cache=True,
                                        **{cache_argument(self.llm.model): cache})  # `cache` since transformers 5.x
        return out.last_hidden_state

    def think(self, ids: torch.Tensor, mask: torch.Tensor, n: int):
        """Run the left-padded prefix (ending with the begin marker) and n continuous thoughts.
        ids/mask [B, T] -> cache, mask [B, T+n], next position [B, 1], thoughts [B, n, d]."""
        pos = (mask.cumsum(-1) - 1).clamp(min=0)  # [B, T] positions of real tokens (left padding)
        cache = DynamicCache(config=self.llm.model.config)
        h = self._forward(self.llm.embed(ids), mask, pos, cache)[:, -1:]  # [B, 1, d] at the begin marker
        nxt = pos[:, -1:] + 1  # [B, 1]
        thoughts = []
        for _ in range(n):
            thoughts.append(h)
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)  # [B, T+i+1]
            h = self._forward(h, mask, nxt, cache)[:, -1:]  # the thought's own output feeds the next
            nxt = nxt + 1
        empty = h.new_zeros(h.shape[0], 0, h.shape[-1])
        return cache, mask, nxt, torch.cat(thoughts, 1) if thoughts else empty

    def continue_with(self, ids, ids_mask, cache, mask, nxt):
        """Append tokens ids [B, S] (mask [B, S], right padded) after the cache: hidden [B, S, d]."""
        mask = torch.cat([mask, ids_mask], 1)
        pos = nxt + torch.arange(ids.shape[1], device=ids.device)  # [B, S]
        return self._forward(self.llm.embed(ids), mask, pos, cache), mask, pos[:, -1:] + 1

    def prefix(self, examples) -> tuple[torch.Tensor, torch.Tensor]:
        texts = [p + self.llm.begin for p in self.llm.prompt_texts(examples, None)]
        return self.llm.encode_prompts(texts)  # left padded [B, T]

    def end_ids(self) -> list[int]:
        return self.llm.tok.encode(self.llm.end, add_special_tokens=False)

    def prompt_texts(self, examples, n_thoughts):
        """What the LLM reads, the continuous thoughts shown as placeholder tokens."""
        mid = self.llm.begin + self.llm.placeholder * self.n_latent + self.llm.end
        return [p + mid for p in self.llm.prompt_texts(examples, None)]

    # ---- training -------------------------------------------------------------------------------
    def suffix(self, examples, prompt_len: int, max_length: int):
        """Right-padded [end marker + stage target + end of turn] ids, mask, labels [B, S]."""
        end = self.end_ids()
        rows, labels = [], []
        for ex in examples:
            r = self.llm.tok.encode(stage_target(ex, self.stage) + self.llm.eot_text, add_special_tokens=False)
            r = r[: max(1, max_length - prompt_len - self.n_latent - len(end))]
            rows.append(end + r)
            labels.append([IGNORE] * len(end) + r)
        S = max(map(len, rows))
        pad = self.llm.tok.pad_token_id
        dev = self.llm.model.device
        ids = torch.tensor([r + [pad] * (S - len(r)) for r in rows], device=dev)
        mask = torch.tensor([[1] * len(r) + [0] * (S - len(r)) for r in rows], device=dev)
        lab = torch.tensor([l + [IGNORE] * (S - len(l)) for l in labels], device=dev)
        return ids, mask, lab

    def loss(self, examples, n_thoughts=None, max_length=1024, cache=None):
        ids, mask = self.prefix(examples)
        cache, mask, nxt, _ = self.think(ids, mask, self.n_latent)
        s_ids, s_mask, s_lab = self.suffix(examples, ids.shape[1], max_length)
        h, _, _ = self.continue_with(s_ids, s_mask, cache, mask, nxt)  # [B, S, d]
        target = s_lab[:, 1:]
        sel = target != IGNORE
        logits = self.llm.model.get_output_embeddings()(h[:, :-1][sel])  # reply positions only (trap 4)
        return F.cross_entropy(logits.float(), target[sel])

    # ---- generation -------------------------------------------------------------------------------
    @torch.no_grad()
    def generation_inputs(self, examples, n_thoughts, thought_cache=None):
        """Full input embeddings [prompt, begin, thoughts, end] and mask, for inspection or for
        `FrozenLLM.generate` (which recomputes the prefix); `generate` keeps the cache instead."""
        ids, mask = self.prefix(examples)
        _, mask, _, thoughts = self.think(ids, mask, self.n_latent)
        end = torch.tensor(self.end_ids(), device=ids.device).expand(ids.shape[0], -1)
        embeds = torch.cat([self.llm.embed(ids), thoughts.to(self.llm.embed(ids).dtype), self.llm.embed(end)], 1)
        return embeds, torch.cat([mask, torch.ones_like(end)], 1)

    @torch.no_grad()
    def generate(self, examples, dec: DecodingConfig, n_thoughts=None, thought_cache=None) -> list[list[Completion]]:
        ids, mask = self.prefix(examples)
        k = dec.num_samples
        ids, mask = ids.repeat_interleave(k, 0), mask.repeat_interleave(k, 0)  # [B*k, T]
        cache, mask, nxt, _ = self.think(ids, mask, self.n_latent)
        end = torch.tensor(self.end_ids(), device=ids.device).expand(ids.shape[0], -1)
        h, mask, nxt = self.continue_with(end, torch.ones_like(end), cache, mask, nxt)
        texts = self.decode(h[:, -1], cache, mask, nxt, dec)
        return [texts[i * k : (i + 1) * k] for i in range(len(examples))]

    def decode(self, h, cache, mask, nxt, dec: DecodingConfig) -> list[Completion]:
        """Token-by-token decoding on the cache from last hidden states h [B, d]."""
        head = self.llm.model.get_output_embeddings()
        stop = torch.tensor(self.llm.stop_ids, device=h.device)
        warp = sampling_warpers(dec)
        done = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
        out = []
        for t in range(dec.max_new_tokens):
            logits = head(h).float()  # [B, vocab]
            if t < dec.min_new_tokens:
                logits[:, stop] = float("-inf")
            if dec.do_sample:
                tok = torch.multinomial(F.softmax(warp(None, logits), -1), 1)[:, 0]
            else:
                tok = logits.argmax(-1)
            tok = torch.where(done, stop[0], tok)  # finished rows repeat a stop token
            out.append(tok)
            done |= torch.isin(tok, stop)
            if bool(done.all()) or t == dec.max_new_tokens - 1:
                break
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
            h = self._forward(self.llm.embed(tok[:, None]), mask, nxt, cache)[:, -1]
            nxt = nxt + 1
        ids = torch.stack(out, 1)  # [B, t]
        return [row[0] for row in self.llm.completions(ids, ids.shape[0], 1)]
