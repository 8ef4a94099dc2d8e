"""One visible training loop for any method that trains (SoftCoT's projection, LoRA, ...).

    softcot train --assistant A --llm L --task gsm8k --train-file train.jsonl --output-dir runs/x

setup  : seed, data split (dev is carved from train, never from test), optimizer, schedule,
         resume from `train_state.pt` if the output folder holds one
loop   : fixed per-epoch order from (seed, epoch); bf16 autocast optional; grad accumulation;
         clipping; JSONL metrics; tqdm
save   : `train_state.pt` (trainable tensors + optimizer + schedule + step, one atomic file) every
         `save_every` steps and at each epoch end, then the method's export (e.g.
         `projection.safetensors` + `softcot_config.json`); `best/` holds the lowest dev loss.
Killed and restarted with the same command, it resumes and ends with the same weights.
"""
from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm
from transformers import get_scheduler

from softcot.config import TrainConfig, to_dict
from softcot.errors import ConfigError
from softcot.methods.base import Method
from softcot.utils import atomic_write_bytes, seed_everything, write_json

STATE_NAME = "train_state.pt"
# Settings that must match to resume (others, like save_every, may change between runs).
RESUME_KEYS = ("train_file", "dev_file", "dev_fraction", "n_thoughts", "epochs", "max_steps", "batch_size",
               "grad_accum", "lr", "weight_decay", "warmup_ratio", "schedule", "max_grad_norm", "limit", "seed")


def split_dev(examples: list, cfg: TrainConfig) -> tuple[list, list]:
    """Hold out a fixed, seeded fraction of the training examples as the dev set."""
    if cfg.dev_fraction <= 0 or len(examples) < 2:
        return examples, []
    g = torch.Generator().manual_seed(cfg.seed)
    order = torch.randperm(len(examples), generator=g).tolist()
    n_dev = max(1, int(len(examples) * cfg.dev_fraction))
    dev_idx = set(order[:n_dev])
    return [e for i, e in enumerate(examples) if i not in dev_idx], [examples[i] for i in sorted(dev_idx)]


def epoch_batches(n: int, cfg: TrainConfig, epoch: int) -> list[list[int]]:
    """The epoch's micro-batches of example indices, grouped per optimizer step."""
    g = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
    order = torch.randperm(n, generator=g).tolist()
    micro = [order[i : i + cfg.batch_size] for i in range(0, n, cfg.batch_size)]
    return [micro[i : i + cfg.grad_accum] for i in range(0, len(micro), cfg.grad_accum)]


@torch.no_grad()
def dev_loss(method: Method, examples: list, cfg: TrainConfig) -> float | None:
    if not examples:
        return None
    total, count = 0.0, 0
    for i in range(0, len(examples), cfg.batch_size):
        batch = examples[i : i + cfg.batch_size]
        with torch.autocast("cpu" if method.llm.model.device.type == "cpu" else "cuda", torch.bfloat16, enabled=cfg.bf16):
            total += float(method.loss(batch, cfg.n_thoughts, cfg.max_length)) * len(batch)
        count += len(batch)
    return total / count


def save_state(out: Path, method: Method, opt, sched, step: int, cfg: TrainConfig, extra: dict) -> None:
    buf = io.BytesIO()
    torch.save({"step": step, "trainable": method.trainable_state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "train_config": to_dict(cfg), **extra}, buf)
    atomic_write_bytes(out / STATE_NAME, buf.getvalue())  # one file: weights and step never disagree
    method.save(out)


def load_state(out: Path, method: Method, opt, sched, cfg: TrainConfig) -> dict | None:
    path = out / STATE_NAME
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    old = state.get("train_config", {})
    diff = [k for k in RESUME_KEYS if old.get(k) != getattr(cfg, k)]
    if diff:
        raise ConfigError(
            f"{path}: holds a run with other settings ({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); "
            "use another --output-dir to start a new run"
        )
    method.load_tensors(state["trainable"], str(path))
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    return state


def train(
    method: Method,
    cfg: TrainConfig,
    train_examples: list,
    dev_examples: list | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> dict:
    """Train `method.trainable` and return a summary. `on_step(step, loss)` is a test hook."""
    if not method.trains:
        raise ConfigError(f"method {method.name!r} has nothing to train")
    if not train_examples:
        raise ConfigError("no training examples")
    # ---- setup -------------------------------------------------------------------------
    seed_everything(cfg.seed)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if dev_examples is None:
        train_examples, dev_examples = split_dev(train_examples, cfg)
    params = method.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # fp32 params -> fp32 state
    steps_per_epoch = len(epoch_batches(len(train_examples), cfg, 0))
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    sched_name = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[cfg.schedule]
    sched = get_scheduler(sched_name, opt, num_warmup_steps=int(cfg.warmup_ratio * total), num_training_steps=total)
    if cfg.gradient_checkpointing:
        method.llm.enable_gradient_checkpointing()
    method.prepare_training(train_examples, cfg.n_thoughts)
    state = load_state(out, method, opt, sched, cfg)
    step = state["step"] if state else 0
    best = state.get("best_dev") if state else None
    metrics_path = out / "metrics.jsonl"
    _truncate_metrics(metrics_path, step)  # drop rows logged after the checkpoint we resume from
    report = method.parameter_report()
    write_json(out / "train_args.json", to_dict(cfg))
    print(f"[softcot] {method.name}: trainable {report['trainable']:,} / total {report['total']:,} "
          f"params ({report['trainable_pct']:.4f}%); {len(train_examples)} train / {len(dev_examples)} dev; "
          f"{total} steps" + (f"; resuming at step {step}" if step else ""))
    device_type = method.llm.model.device.type
    # ---- loop --------------------------------------------------------------------------
    row: dict = {"loss": None}
    bar = tqdm(total=total, initial=step, desc=f"train {method.name}", dynamic_ncols=True)
    t0 = time.time()
    epoch = step // steps_per_epoch
    while step < total:
        groups = epoch_batches(len(train_examples), cfg, epoch)
        for gi in range(step - epoch * steps_per_epoch, len(groups)):
            n_items = sum(len(m) for m in groups[gi])
            loss_sum = 0.0
            for micro in groups[gi]:
                batch = [train_examples[i] for i in micro]
                with torch.autocast(device_type, torch.bfloat16, enabled=cfg.bf16):
                    loss = method.loss(batch, cfg.n_thoughts, cfg.max_length)
                # weight each micro-batch by its size so accumulation equals one big batch
                (loss * len(batch) / n_items).backward()
                loss_sum += float(loss.detach()) * len(batch)
            gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            row = {"step": step, "epoch": epoch, "loss": loss_sum / n_items, "grad_norm": gnorm,
                   "lr": sched.get_last_lr()[0], "elapsed_s": round(time.time() - t0, 3)}
            at_epoch_end = gi == len(groups) - 1
            if (cfg.eval_every and step % cfg.eval_every == 0) or (at_epoch_end and not cfg.eval_every) or step == total:
                row["dev_loss"] = dev_loss(method, dev_examples, cfg)
            _append(metrics_path, row)
            bar.update(1)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if on_step is not None:
                on_step(step, row["loss"])
            if row.get("dev_loss") is not None and (best is None or row["dev_loss"] < best):
                best = row["dev_loss"]
                method.save(out / "best")
            if (cfg.save_every and step % cfg.save_every == 0) or at_epoch_end or step == total:
                save_state(out, method, opt, sched, step, cfg, {"best_dev": best})
            if step >= total:
                break
        epoch += 1
    bar.close()
    summary = {"steps": step, "final_loss": row["loss"], "best_dev_loss": best,
               "train_examples": len(train_examples), "dev_examples": len(dev_examples), **report}
    write_json(out / "train_summary.json", summary)
    return summary


def _append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    path.write_text("".join(r + "\n" for r in rows))
