"""SoftCoTLM: any softcot method as an lm-eval model (lm-eval's TemplateLM).

    generate_until          batched, through the method's own `generate` (soft thoughts spliced,
                            Coconut / step-wise decoders included); lm-eval's `until` strings cut the
                            text, `max_gen_toks`, `do_sample`, `temperature`, `top_p`, `top_k` decode
    loglikelihood           log p(continuation | the method's input for the context), batched: the
                            method's prompt embeddings (thoughts spliced) + the continuation's tokens
                            as the start of the LLM's reply, in one forward
    loglikelihood_rolling   the plain LLM's rolling log-likelihood of a text (zero-shot-cot, lora);
                            other methods refuse it (their input needs a question)
    rank / world_size       `accelerate launch -m softcot.cli lm-eval run ...` shares the requests
                            (lm-eval gives each process its share); `requests_handled` counts, per
                            request type, the distinct requests this process answered (lm-eval
                            pads a smaller share by repeating its last request: counted once)

model_arg `prompt` (softcot.harness.chat): `method` (default) gives the method softcot's own prompt
(what `softcot eval` and a trained projection use); `task` gives it lm-eval's prompt read as lm-eval's
`hf` model reads it (raw context without --apply_chat_template, the chat template with it; hf's
tokenization, left truncation, stop strings with the EOS text, loglikelihood's token split), so
`method=zero-shot-cot,prompt=task` gives hf's completions and scores.

Methods that return several completions per question (SoftCoT++: one per chain) answer a
generate request with the completion holding their majority answer (softcot's scorer votes over the
chains' completions, each cut at lm-eval's `until` strings first), and a
loglikelihood request with the chains' mixture, log(mean_k p_k(continuation)).
"""
from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict

import torch
from lm_eval.api.model import TemplateLM
from lm_eval.utils import get_rolling_token_windows, make_disjoint_window
from tqdm.auto import tqdm

from softcot import distributed as dist
from softcot.config import DecodingConfig
from softcot.data import Example
from softcot.harness import chat
from softcot.harness.args import model_config, overrides, parse_model_args, split_pairs
from softcot.scoring import extract_answer, majority_vote

log = logging.getLogger("softcot")

ROLLING_METHODS = ("zero-shot-cot", "lora")  # the LLM reads plain text: a rolling likelihood means something
DEFAULT_MAX_GEN_TOKS = 256  # lm-eval's HF model default
DEFAULT_MAX_LENGTH = 2048  # lm-eval's HF model default, for a model that states none
TOKENIZER_INFINITY = int(1e30)  # transformers' "no model_max_length"


class SoftCoTLM(TemplateLM):
    backend = "causal"

    def __init__(self, **model_args) -> None:
        super().__init__()
        from softcot.checks import device_for
        from softcot.methods import build_method, load_method

        self.args = parse_model_args(model_args)
        cfg, ckpt = model_config(self.args)  # every input checked before any model loads
        device = device_for(self.args.device)
        self.method = load_method(ckpt, device, **overrides(self.args)) if ckpt else build_method(cfg, device)
        self.llm, self.tokenizer = self.method.llm, self.method.llm.tok
        self.n_thoughts = self.method.thought_count(self.args.n_thoughts or None)
        self.batch_size = self.args.batch_size
        self._device = self.llm.model.device
        self._rank, self._world_size = dist.rank(), dist.world()
        self._warned: set[str] = set()
        self.requests_handled: Counter[str] = Counter()  # request type -> distinct requests answered here

    def _count(self, kind: str, requests) -> None:
        self.requests_handled[kind] += len({id(r) for r in requests})  # lm-eval's padding repeats an Instance

    @classmethod
    def create_from_arg_obj(cls, arg_dict, additional_config=None):
        """lm-eval's --batch_size / --device fill what model_args leave out (model_args win)."""
        extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
        return cls(**{**extra, **arg_dict})

    @classmethod
    def create_from_arg_string(cls, arg_string, additional_config=None):
        return cls.create_from_arg_obj(split_pairs(arg_string), additional_config)

    # ---- what lm-eval asks of a TemplateLM ----------------------------------------------------------
    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.eot_token_id

    @property
    def max_length(self) -> int:
        """The LLM's context length, found as lm-eval's hf model finds it: the (text) config's
        n_positions / max_position_embeddings / n_ctx, else the tokenizer's model_max_length."""
        cfg = self.llm.model.config
        cfg = getattr(cfg, "text_config", None) or cfg
        for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
            if getattr(cfg, attr, None) is not None:
                return int(getattr(cfg, attr))
        n = getattr(self.tokenizer, "model_max_length", None)
        return int(n) if n is not None and n != TOKENIZER_INFINITY else DEFAULT_MAX_LENGTH

    @property
    def task_prompt(self) -> bool:
        """prompt=task: lm-eval's prompt, read as lm-eval's hf model reads it (softcot.harness.chat)."""
        return self.args.prompt == "task"

    @property
    def tokenizer_name(self) -> str:
        return str(self.method.cfg.llm).replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        """As lm-eval's hf model: None = the tokenizer's own special tokens, none before a BOS."""
        if add_special_tokens is None:
            return chat.hf_encode(self.tokenizer, string)
        return self.tokenizer.encode(string, add_special_tokens=add_special_tokens)

    def apply_chat_template(self, chat_history: list[dict], add_generation_prompt: bool = True) -> str:
        """lm-eval's messages travel in the context; the method renders them (softcot.harness.chat)."""
        return chat.encode(chat_history)

    def get_model_info(self) -> dict:
        c = self.method.cfg
        return {"softcot_method": c.method, "llm": c.llm, "assistant": c.assistant, "n_thoughts": self.n_thoughts,
                "checkpoint": self.args.checkpoint, "prompt": self.args.prompt, "world_size": self.world_size}

    # ---- distributed: the evaluator's collectives over the accelerate process group -------------------
    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        from accelerate.utils import gather

        return gather(tensor) if self.world_size > 1 else tensor

    def gather_object(self, obj, dst: int = 0):
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj, out, dst=dst)
        return out

    def barrier(self) -> None:
        dist.barrier()

    # ---- requests -> softcot examples ------------------------------------------------------------------
    def _batches(self, chats: list[chat.Chat], key_extra=None):
        """Index batches of batch_size. prompt=method: grouped by chat frame (and `key_extra[i]`),
        sorted by question length inside a group (as `softcot eval` sorts). prompt=task: grouped by
        `key_extra[i]` alone, longest context first (as lm-eval's hf model sorts its requests)."""
        groups = defaultdict(list)
        for i, c in enumerate(chats):
            groups[(() if self.task_prompt else c.frame, key_extra[i] if key_extra else None)].append(i)
        for (frame, extra), idx in groups.items():
            if self.task_prompt:
                texts = {i: self._hf_context(chats[i]) for i in idx}
                lens = {i: len(chat.hf_encode(self.tokenizer, t)) for i, t in texts.items()}
                idx.sort(key=lambda i: (-lens[i], texts[i], i))
            else:
                idx.sort(key=lambda i: (len(chats[i].question.strip()), i))
            for s in range(0, len(idx), self.batch_size):
                yield frame, extra, idx[s : s + self.batch_size]

    def _hf_context(self, c: chat.Chat) -> str:
        """The context string lm-eval's hf model would receive for this request."""
        return chat.hf_chat_template(self.tokenizer, c.messages(c.question), c.prefill is not None) if c.templated \
            else c.question

    def _reading(self, frame: tuple, chats: list[chat.Chat], idx: list[int], **kw):
        """The LLM's prompt for this batch: softcot's own rendering (prompt=method) or lm-eval's,
        read as its hf model reads it (prompt=task)."""
        if self.task_prompt:
            return chat.reading_as_hf(self.method, {f"lm-eval/{i}": chats[i] for i in idx}, **kw)
        return chat.rendering(self.method, frame)

    def _examples(self, chats: list[chat.Chat], idx: list[int]) -> list[Example]:
        return [Example(id=f"lm-eval/{i}", task=self.method.cfg.task, question=chats[i].question, answer="")
                for i in idx]

    def _inputs(self, examples: list[Example]) -> tuple[torch.Tensor, torch.Tensor]:
        """The method's left-padded LLM input: embeddings [R, T, d_llm] (thoughts spliced), mask [R, T]."""
        m = self.method
        if hasattr(m, "prompt_embeds"):  # the step-wise LightThinker family builds its prompt here
            ids, mask = self.llm.encode_prompts(m.prompt_texts(examples, self.n_thoughts))
            return m.prompt_embeds(examples, self.n_thoughts, ids, mask), mask
        return m.generation_inputs(examples, self.n_thoughts)

    # ---- generate_until ------------------------------------------------------------------------------
    def _decoding(self, gen_kwargs: dict) -> tuple[DecodingConfig, list[str], int]:
        """lm-eval's gen_kwargs -> (decoding, stop strings, max_gen_toks). prompt=task decodes as lm-eval's
        hf model: the EOS text is a stop string too, and a `max_new_tokens` in the LLM's generation
        config outranks max_gen_toks (transformers lets it win over hf's max_length)."""
        kw = dict(gen_kwargs)
        until = kw.pop("until", None) or []
        until = [until] if isinstance(until, str) else list(until)
        eos = self.tokenizer.decode([self.eot_token_id], skip_special_tokens=False) if self.eot_token_id is not None else None
        if self.task_prompt and eos and eos not in until:
            until.append(eos)  # lm-eval's hf model stops at the EOS text too
        sizes = [kw.pop(k, None) for k in ("max_gen_toks", "max_new_tokens", "max_tokens", "max_completion_tokens")]
        max_gen_toks = int(next((n for n in sizes if n is not None), DEFAULT_MAX_GEN_TOKS))  # lm-eval's aliases
        max_new = max_gen_toks
        if self.task_prompt and getattr(self.llm.model.generation_config, "max_new_tokens", None):
            max_new = int(self.llm.model.generation_config.max_new_tokens)
        temperature, top_p, top_k = kw.pop("temperature", None), kw.pop("top_p", None), kw.pop("top_k", None)
        do_sample = kw.pop("do_sample", None)
        if do_sample is None:  # lm-eval's convention: a positive temperature alone means sampling
            do_sample = bool(temperature)
        ignored = sorted(set(kw) - self._warned)
        if ignored:
            self._warned |= set(ignored)
            log.warning("softcot lm-eval model: gen_kwargs %s are not used by softcot's decoding", ignored)
        dec = DecodingConfig(max_new_tokens=max_new, do_sample=bool(do_sample),
                             temperature=float(temperature) if do_sample and temperature else 1.0,
                             top_p=float(top_p) if do_sample and top_p else 1.0,
                             top_k=int(top_k) if do_sample and top_k else 0)
        return dec, until, max_gen_toks

    @staticmethod
    def _cut(text: str, until: list[str]) -> str:
        """lm-eval's stop strings cut the text where they first occur."""
        for stop in until:
            if stop:
                text = text.split(stop)[0]
        return text

    def _one_answer(self, completions: list, until: list[str]) -> str:
        """One text per question: the only completion, or (several chains) the majority answer's first;
        each completion is cut at the stop strings before its answer is read (what lm-eval would score)."""
        completions = [self._cut(str(c), until) for c in completions]
        if len(completions) == 1:
            return completions[0]
        task = self.method.cfg.task
        answers = [extract_answer(c, task) for c in completions]
        best = majority_vote(answers, task)
        return next((c for c, a in zip(completions, answers) if best is not None and a == best), completions[0])

    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        self._count("generate_until", requests)
        chats = [chat.parse(r.args[0]) for r in requests]
        kwargs = [repr(sorted(r.args[1].items())) for r in requests]
        out: list[str | None] = [None] * len(requests)
        batches = list(self._batches(chats, kwargs))
        bar = tqdm(batches, desc="softcot generate_until", disable=disable_tqdm or self.rank != 0)
        with self.method.reusing_prefix():  # the shared prompt start computed once, as `softcot eval` does
            for frame, _, idx in bar:
                dec, until, max_gen_toks = self._decoding(requests[idx[0]].args[1])
                if self.task_prompt and self.max_length - max_gen_toks <= 0:
                    raise ValueError(f"softcot lm-eval model: max_gen_toks={max_gen_toks} leaves no room for a "
                                     f"context in the LLM's {self.max_length} positions")
                with self._reading(frame, chats, idx, max_ctx=self.max_length - max_gen_toks), \
                        torch.inference_mode():
                    comps = self.method.generate(self._examples(chats, idx), dec, n_thoughts=self.n_thoughts)
                for i, c in zip(idx, comps):
                    out[i] = text = self._one_answer(c, until)
                    self.cache_hook.add_partial("generate_until", requests[i].args, text)
        return out

    # ---- loglikelihood: the method's input + the continuation as the reply's start --------------------
    def loglikelihood(self, requests, disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self._count("loglikelihood", requests)
        chats = [chat.parse(r.args[0]) for r in requests]
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        batches = list(self._batches(chats))
        for frame, _, idx in tqdm(batches, desc="softcot loglikelihood", disable=disable_tqdm or self.rank != 0):
            with self._reading(frame, chats, idx, split_end=True) as reading, torch.inference_mode():
                embeds, mask = self._inputs(self._examples(chats, idx))  # [R, T, d], [R, T]
                if self.task_prompt:  # lm-eval's split: the context's trailing blanks start the continuation,
                    conts, keep = [], []  # its ids are those of the whole text after the context's
                    for i in idx:
                        key = f"lm-eval/{i}"
                        text, cont = reading.texts[key], reading.trailing[key] + requests[i].args[1]
                        ctx_ids = chat.hf_encode(self.tokenizer, text)
                        conts.append(chat.hf_encode(self.tokenizer, text + cont)[len(ctx_ids):])
                        keep.append(self.max_length + 1 - len(conts[-1]))  # hf's left truncation
                else:  # a reply starts right after the template's generation header: leading blanks dropped
                    # (lm-eval's target delimiter), unless it continues a prefilled assistant message
                    conts = [self.tok_encode(requests[i].args[1] if chats[i].prefill is not None
                                             else requests[i].args[1].lstrip(), add_special_tokens=False) for i in idx]
                    keep = None
                scores = self._continuation_logprobs(embeds, mask, conts, keep)
            for i, s in zip(idx, scores):
                out[i] = s
                self.cache_hook.add_partial("loglikelihood", requests[i].args, s)
        return out

    def _continuation_logprobs(self, embeds: torch.Tensor, mask: torch.Tensor, conts: list[list[int]],
                               keep: list[int] | None = None) -> list[tuple[float, bool]]:
        """Sum log p(continuation) and whether it is greedy, per question, from R = B * r rows.
        keep[b]: at most this many of question b's last prompt tokens are read (older ones masked)."""
        R, T, _ = embeds.shape
        B = len(conts)
        r = R // B  # LLM rows per question (SoftCoT++: chains)
        self._check_single_step(conts)
        if keep is not None:
            limit = torch.tensor(keep, device=mask.device).clamp(min=1).repeat_interleave(r)  # [R]
            after = mask.flip(-1).cumsum(-1).flip(-1)  # [R, T]: real prompt tokens from here to the end
            mask = mask * (after <= limit[:, None]).to(mask.dtype)
        C = max(1, max(map(len, conts)))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        cid = torch.full((B, C), pad, dtype=torch.long, device=embeds.device)
        cmask = torch.zeros((B, C), dtype=mask.dtype, device=embeds.device)
        for b, c in enumerate(conts):
            cid[b, : len(c)] = torch.tensor(c, dtype=torch.long)
            cmask[b, : len(c)] = 1
        cid, cmask = cid.repeat_interleave(r, 0), cmask.repeat_interleave(r, 0)  # [R, C], example-major rows
        # splice: [left-padded prompt | right-padded continuation]; positions follow the mask
        full = torch.cat([embeds, self.llm.embed(cid).to(embeds.dtype)], 1)  # [R, T + C, d]
        fmask = torch.cat([mask, cmask], 1)  # [R, T + C]
        pos = (fmask.cumsum(-1) - 1).clamp(min=0)
        h = self.llm.model.base_model(inputs_embeds=full, attention_mask=fmask, position_ids=pos).last_hidden_state
        logits = self.llm.model.get_output_embeddings()(h[:, T - 1 : T + C - 1]).float()  # [R, C, vocab]
        logp = logits.log_softmax(-1).gather(-1, cid[..., None])[..., 0] * cmask  # [R, C]
        greedy = ((logits.argmax(-1) == cid) | (cmask == 0)).all(-1)  # [R]
        total = logp.sum(-1).view(B, r)  # [B, r]
        mixture = torch.logsumexp(total.double(), -1) - math.log(r)  # [B]: log mean_k p_k
        return [(float(mixture[b]), bool(greedy.view(B, r)[b].all())) for b in range(B)]

    def _check_single_step(self, conts: list[list[int]]) -> None:
        """Step-wise decoders change their input at each step boundary: a continuation that crosses one
        would need their compressed decoding, which a single forward does not do."""
        boundary = set(getattr(self.method, "boundary", ()) or ())
        if boundary and any(t in boundary for c in conts for t in c):
            raise ValueError(f"softcot lm-eval model: method {self.method.name!r} cannot score a continuation that "
                             "spans a reasoning-step boundary (a new line); use generate_until tasks")

    # ---- the plain LLM: token-level scoring and rolling likelihood -------------------------------------
    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        if self.method.name not in ROLLING_METHODS:
            raise ValueError(f"softcot lm-eval model: loglikelihood_rolling (perplexity tasks) is defined for the plain "
                             f"LLM only (method={'|'.join(ROLLING_METHODS)}); method {self.method.name!r} needs a question")
        self._count("loglikelihood_rolling", requests)
        out = []
        for (text,) in tqdm([r.args for r in requests], desc="softcot rolling", disable=disable_tqdm or self.rank != 0):
            windows = [make_disjoint_window(w) for w in get_rolling_token_windows(
                token_list=self.tok_encode(text), prefix_token=self.prefix_token_id, max_seq_len=self.max_length,
                context_len=1)]
            scores = self._loglikelihood_tokens([(None, ctx, cont) for ctx, cont in windows], disable_tqdm=True)
            out.append(sum(s for s, _ in scores))
            self.cache_hook.add_partial("loglikelihood_rolling", (text,), out[-1])
        return out

    @torch.inference_mode()
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        """(key, context ids, continuation ids) -> (sum log p, greedy) with the plain LLM on raw tokens."""
        out = []
        for s in range(0, len(requests), self.batch_size):
            batch = requests[s : s + self.batch_size]
            seqs = [(ctx + cont)[-(self.max_length + 1):][:-1] for _, ctx, cont in batch]  # inputs
            L = max(map(len, seqs))
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
            ids = torch.tensor([q + [pad] * (L - len(q)) for q in seqs], device=self._device)  # [B, L], right padded
            mask = torch.tensor([[1] * len(q) + [0] * (L - len(q)) for q in seqs], device=self._device)
            logits = self.llm.model(input_ids=ids, attention_mask=mask).logits.float().log_softmax(-1)  # [B, L, V]
            for b, (_, _, cont) in enumerate(batch):
                n, C = len(seqs[b]), len(cont)
                lp = logits[b, n - C : n]  # [C, V]: the positions that predict the continuation
                target = torch.tensor(cont, device=self._device)
                out.append((float(lp.gather(-1, target[:, None]).sum()), bool((lp.argmax(-1) == target).all())))
        return out

