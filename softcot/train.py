"""One visible training loop for every method that trains (SoftCoT's projection, SoftCoT++,
prompt tuning, LoRA, Coconut's curriculum).

    softcot train --assistant A --llm L --task gsm8k --train-file train.jsonl --output-dir runs/x

setup  : seed, data split (dev is carved from train, never from test), the thought cache (the
         frozen assistant's thoughts, computed once before the first epoch, owned by this run),
         optimizer, schedule, resume from the output folder's state if it holds this run
phases : `method.training_phases()`, each with a fresh optimizer in `{output_dir}/{phase}`
         (Coconut's stages); one unnamed phase for every other method
loop   : fixed per-epoch order from (seed, epoch); bf16 autocast optional; grad accumulation;
         clipping; a non-finite loss stops the run with the last good checkpoint kept
save   : the resume state (safetensors + JSON, no pickle, published atomically: softcot.state)
         every `save_every` steps and at each epoch end, then the method's export (e.g.
         `projection.safetensors` + `softcot_config.json`); `best/` holds the lowest dev loss.
Killed and restarted with the same command, it resumes and ends with the same weights.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from softcot import distributed as dist
from softcot.assistant import ThoughtCache
from softcot.config import RESUME_KEYS, TrainConfig, to_dict
from softcot.data import target_text
from softcot.faults import maybe_crash
from softcot.errors import ConfigError, SoftCoTError
from softcot.methods.base import Method
from softcot.state import check_resumable, has_train_state, load_train_state, save_train_state
from softcot.utils import atomic_write_text, log, reporting_full_disk, seed_everything, write_json



class NonFiniteLoss(SoftCoTError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""


def split_dev(examples: list, cfg: TrainConfig) -> tuple[list, list]:
    """Hold out a fixed, seeded fraction of the training examples as the dev set."""
    if cfg.dev_fraction <= 0 or len(examples) < 2:
        return examples, []
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(examples), generator=g).tolist()
    n_dev = max(1, int(len(examples) * cfg.dev_fraction))
    dev_idx = set(order[:n_dev])
    return [e for i, e in enumerate(examples) if i not in dev_idx], [examples[i] for i in sorted(dev_idx)]


def epoch_batches(n: int, cfg: TrainConfig, epoch: int, lengths: list[int] | None = None) -> list[list[list[int]]]:
    """The epoch's micro-batches of example indices, grouped per optimizer step. With
    `lengths` (and cfg.group_by_length) the shuffled order is cut into windows of 64 micro-batches,
    each window sorted by length before it is split, and the micro-batches shuffled again: batches
    hold examples of similar length (less padding) in a seeded, still random order."""
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    if lengths is not None and cfg.group_by_length:
        w = cfg.batch_size * 64
        order = [i for s in range(0, n, w) for i in sorted(order[s : s + w], key=lambda j: lengths[j])]
    micro = [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
    if lengths is not None and cfg.group_by_length:
        micro = [micro[i] for i in torch.randperm(len(micro), generator=g).tolist()]
    return [micro[i : i + cfg.grad_accum] for i in range(0, len(micro), cfg.grad_accum)]


def step_n(cfg: TrainConfig, step: int) -> int:
    """The N of optimizer step `step` (0-based): fixed, or drawn uniformly from train_n_mix by a
    stream seeded from (seed, step), so a resumed run draws the same N."""
    lo, hi = cfg.n_range()
    if lo == hi:
        return lo
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


def _autocast(method: Method, cfg: TrainConfig):
    return torch.autocast(method.llm.model.device.type, torch.bfloat16, enabled=cfg.bf16)


@torch.no_grad()
def dev_loss(method: Method, examples: list, cfg: TrainConfig, cache: ThoughtCache | None = None) -> float | None:
    """Example-weighted mean loss over the dev set; its batches are shared out over processes."""
    if not examples:
        return None
    total = torch.zeros(2, dtype=torch.float64)  # [sum of loss * batch size, examples]
    starts = range(0, len(examples), cfg.batch_size)
    for i in list(starts)[dist.rank() :: dist.world()]:
        batch = examples[i : i + cfg.batch_size]
        with _autocast(method, cfg):
            total[0] += float(method.loss(batch, cfg.train_n_thoughts, cfg.max_length, cache=cache)) * len(batch)
        total[1] += len(batch)
    total = dist.sum_tensor(total.to(method.llm.model.device)).cpu()
    return float(total[0] / total[1])


def applied_config(method_cls, mcfg, cfg: TrainConfig) -> TrainConfig:
    """`cfg` with the projection init the method really applies: methods without a data-driven
    init (LoRA, prompt tuning, Coconut, an MLP projection) start at random whatever was asked, so
    their runs record (and resume as) 'random'."""
    if cfg.projection_init != "random" and not method_cls.bridges(mcfg):
        return dataclasses.replace(cfg, projection_init="random")
    return cfg


def fill_cache(cache: ThoughtCache | None, examples: list, cfg: TrainConfig) -> None:
    """Compute every example's thoughts ahead of the first step (entries present are kept). A causal
    assistant's first n slot states do not depend on later slots: caching at the highest N serves
    every N of a mix."""
    if cache is None:
        return
    t0, before = time.time(), len(cache.store)
    cache.fill(examples, cfg.n_range()[1], max(cfg.batch_size, 32))
    if len(cache.store) > before:
        log.info("cached the assistant's thoughts of %d examples in %.1f s", len(cache.store), time.time() - t0)


def train(
    method: Method,
    cfg: TrainConfig,
    train_examples: list,
    dev_examples: list | None = None,
    on_step: Callable[[int, float], None] | None = None,
    thought_cache: ThoughtCache | None = None,
) -> dict:
    """Train `method.trainable` through all its phases and return the summary (per phase too).
    `on_step(step, loss)` is a test hook. `thought_cache` lends this run a cache of the frozen
    assistant's thoughts that other runs of the same assistant share (the demo's training seeds:
    the thoughts depend on the question, never on the seed); by default the run owns a fresh one.

    Under `accelerate launch` (K processes) the global batch of an optimizer step is still
    batch_size x grad_accum examples: its grad_accum micro-batches are shared out over the
    processes (micro-batch j on process j % K) and the gradients summed, so K processes compute
    the same step as one (set grad_accum to a multiple of K to keep every process busy). Only
    the main process writes files."""
    if not method.trains:
        raise ConfigError(f"method {method.name!r} has nothing to train")
    if not train_examples:
        raise ConfigError("no training examples")
    cfg = applied_config(type(method), method.cfg, cfg)
    if dev_examples is None:
        train_examples, dev_examples = split_dev(train_examples, cfg)
    # filled by train_phase only when there are steps to run (a finished run resumes for nothing)
    cache = None
    if cfg.cache_thoughts and method.cacheable_thoughts:
        cache = thought_cache if thought_cache is not None else ThoughtCache(method.assistant)
    phases = method.training_phases()
    if len(phases) == 1:
        return train_phase(method, cfg, train_examples, dev_examples, cache, on_step)
    out = Path(cfg.output_dir)
    summaries = []
    for i, phase in enumerate(phases):
        method.enter_phase(i)
        log.info("%s phase %s", method.name, phase)
        phase_cfg = dataclasses.replace(cfg, output_dir=str(out / phase))
        summaries.append({"phase": phase, **train_phase(method, phase_cfg, train_examples, dev_examples, cache, on_step)})
    summary = {**summaries[-1], "phases": summaries}
    if dist.is_main():
        method.save(out)  # the last phase's model is the run's model
        write_json(out / "train_summary.json", summary)
    dist.barrier()
    return summary


def train_phase(method: Method, cfg: TrainConfig, train_examples: list, dev_examples: list,
                cache: ThoughtCache | None, on_step: Callable[[int, float], None] | None = None) -> dict:
    # ---- setup -------------------------------------------------------------------------
    seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_resumable(out, to_dict(cfg), RESUME_KEYS)  # a pickled state or another run's: one line, nothing read
    params = method.trainable_parameters()
    # a data-driven start (SoftCoT: the vocabulary bridge) for a new run; a resumed run loads its weights
    resuming = has_train_state(out)
    if not resuming:
        fill_cache(cache, train_examples + dev_examples, cfg)
    init = {} if resuming else method.init_trainable(train_examples, cfg.n_range()[1], cfg.projection_init, cache)
    dist.broadcast_parameters(params)  # every process starts from process 0's initialisation
    if cfg.init_only:
        return _save_init_only(method, cfg, out, train_examples, dev_examples, cache, init)
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # fp32 params -> fp32 state
    lengths = [len(ex.question) + len(target_text(ex)) for ex in train_examples]  # characters: a cheap proxy
    steps_per_epoch = len(epoch_batches(len(train_examples), cfg, 0))
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    sched_name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.schedule]
    sched = get_scheduler(sched_name, opt, num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
    if cfg.gradient_checkpointing:
        method.llm.enable_gradient_checkpointing()
    state = load_train_state(out, opt, sched)
    if state is not None:
        method.load_tensors(state["trainable"], str(out))
    step = state["step"] if state else 0
    if resuming and step < total:
        fill_cache(cache, train_examples + dev_examples, cfg)
    best = state["meta"].get("best_dev") if state else None
    metrics_path = out / "metrics.jsonl"
    main = dist.is_main()
    dist.barrier()  # every process has read the state before the main one writes anything
    if main:
        _truncate_metrics(metrics_path, step)  # drop rows logged after the checkpoint we resume from
        write_json(out / "train_args.json", to_dict(cfg))
    report = method.parameter_report()
    tracker = _tracker(cfg, out)
    if dist.world() > 1 and cfg.grad_accum % dist.world():
        log.warning("grad_accum=%d is not a multiple of the %d processes: some idle at each step",
                    cfg.grad_accum, dist.world())
    log.info("%s: trainable %s / total %s params (%.4f%%); %d train / %d dev; %d steps%s", method.name,
             f"{report['trainable']:,}", f"{report['total']:,}", report["trainable_pct"], len(train_examples),
             len(dev_examples), total, f"; resuming at step {step}" if step else "")
    # ---- loop --------------------------------------------------------------------------
    row: dict = {"loss": None}
    bar = tqdm(total=total, initial=step, desc=f"train {method.name}", dynamic_ncols=True, disable=not main)
    t0 = time.time()
    epoch = step // steps_per_epoch
    while step < total:
        groups = epoch_batches(len(train_examples), cfg, epoch, lengths)
        for gi in range(step - epoch * steps_per_epoch, len(groups)):
            n_items = sum(len(m) for m in groups[gi])
            loss_sum = torch.zeros(1, dtype=torch.float64)
            for micro in groups[gi][dist.rank() :: dist.world()]:  # this process's micro-batches
                batch = [train_examples[i] for i in micro]
                with _autocast(method, cfg):
                    loss = method.loss(batch, step_n(cfg, step), cfg.max_length, cache=cache)
                # weight each micro-batch by its size so accumulation equals one big batch; a batch
                # whose loss no trainable tensor touches (e.g. no step boundary to re-inject at
                # within max_length) contributes a zero gradient
                if loss.requires_grad:
                    (loss * len(batch) / n_items).backward()
                loss_sum += float(loss.detach()) * len(batch)
            dist.sum_gradients(params)  # [one all-reduce] every process now holds the global gradient
            loss_mean = float(dist.sum_tensor(loss_sum.to(params[0].device))[0]) / n_items
            if not math.isfinite(loss_mean):
                raise NonFiniteLoss(f"non-finite loss {loss_mean:.4g} at step {step + 1} (epoch {epoch}); "
                                    f"the last good checkpoint in {out} is kept: lower --lr or check the data")
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            maybe_crash("train-step")
            row = {"step": step, "epoch": epoch, "loss": loss_mean, "grad_norm": gnorm,
                   "lr": sched.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 3)}
            at_epoch_end = gi == len(groups) - 1
            if (cfg.eval_every and step % cfg.eval_every == 0) or (at_epoch_end and not cfg.eval_every) or step == total:
                row["dev_loss"] = dev_loss(method, dev_examples, cfg, cache)
            if main:
                _append(metrics_path, row)
            if tracker is not None:  # logs on the main process only (accelerate's rule)
                tracker.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}, step=step)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if on_step is not None:
                on_step(step, row["loss"])
            if row.get("dev_loss") is not None and (best is None or row["dev_loss"] < best):
                best = row["dev_loss"]
                if main:
                    method.save(out / "best")
            if main and ((cfg.save_every and step % cfg.save_every == 0) or at_epoch_end or step == total):
                save_train_state(out, trainable=method.trainable_state_dict(), optimizer=opt, scheduler=sched,
                                 step=step, meta={"best_dev": best, "train_config": to_dict(cfg)})
                method.save(out)
            if step >= total:
                break
        epoch += 1
    bar.close()
    if tracker is not None:
        tracker.end_training()
    summary = {"steps": step, "final_loss": row["loss"], "best_dev_loss": best, "processes": dist.world(),
               "train_examples": len(train_examples), "dev_examples": len(dev_examples), **init, **report}
    if main:
        write_json(out / "train_summary.json", summary)
    dist.barrier()  # nobody starts the next phase (or exits) before the main process saved
    return summary


def _save_init_only(method: Method, cfg: TrainConfig, out: Path, train_examples: list, dev_examples: list,
                    cache: ThoughtCache | None, init: dict) -> dict:
    """--init-only: the initialisation is the checkpoint (training-free SoftCoT: the vocabulary bridge)."""
    if not init:
        log.warning("--init-only with projection_init=%s: the checkpoint is an untrained (random) %s",
                    cfg.projection_init, method.name)
    loss = dev_loss(method, dev_examples, cfg, cache)
    report = method.parameter_report()
    summary = {"steps": 0, "init_only": True, "final_loss": None, "best_dev_loss": loss, "processes": dist.world(),
               "train_examples": len(train_examples), "dev_examples": len(dev_examples), **init, **report}
    if dist.is_main():
        write_json(out / "train_args.json", to_dict(cfg))
        method.save(out)
        write_json(out / "train_summary.json", summary)
    log.info("%s: --init-only: saved the initialisation (%s) to %s with no training step; dev loss %s",
             method.name, cfg.projection_init, out, "-" if loss is None else f"{loss:.4f}")
    dist.barrier()
    return summary


def _tracker(cfg: TrainConfig, out: Path):
    """accelerate's experiment trackers (TensorBoard, W&B) when asked for, else None."""
    if cfg.report_to == "none":
        return None
    from accelerate import Accelerator

    acc = Accelerator(log_with=cfg.report_to, project_dir=str(out / "logs"), cpu=not torch.cuda.is_available())
    acc.init_trackers("softcot", config={k: v for k, v in to_dict(cfg).items() if isinstance(v, (int, float, str, bool))})
    return acc


def _append(path: Path, row: dict) -> None:
    with reporting_full_disk(path), open(path, "a") as f:  # a full disk: one line (a torn row is dropped on resume)
        f.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the rows up to `step` (a torn last line is dropped), rewritten atomically."""
    if not path.is_file():
        return
    rows = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            if json.loads(line)["step"] <= step:
                rows.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            break  # a line torn by a crash: nothing after it was written whole
    atomic_write_text(path, "".join(r + "\n" for r in rows))
