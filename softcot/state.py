"""Resume state of a training run, saved without pickle and published atomically.

    save_train_state(out, trainable=method.trainable_state_dict(), optimizer=opt, scheduler=sched,
                     step=step, meta={"train_config": to_dict(cfg), "best_dev": best})
    state = load_train_state(out, opt, sched)   # None when the folder holds no state yet
    if state: method.load_tensors(state["trainable"], str(state["path"])); step = state["step"]

Layout (one trainer per output folder):
    out/train_state.json            pointer {"format": "softcot-train-state", "version": 1, "dir": "state-00000123"}
    out/state-00000123/tensors.safetensors   weights, optimizer tensors, torch/CUDA/numpy RNG
    out/state-00000123/state.json            step, param_groups, scheduler, python/numpy RNG, meta
Only tensors and JSON are ever read back, so a planted file cannot run code (no torch.load/pickle).
The folder is complete and fsynced before the pointer names it, and old folders go only after the
pointer moved, so a crash at any instant leaves either the old or the new state loadable.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import re
import secrets
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save

from softcot.faults import maybe_crash
from softcot.config import with_legacy_values
from softcot.errors import CheckpointError, ConfigError
from softcot.utils import atomic_write_text, reporting_full_disk, write_new_file

POINTER = "train_state.json"
LEGACY = "train_state.pt"
FORMAT, VERSION = "softcot-train-state", 1
TENSORS, META = "tensors.safetensors", "state.json"
_DIR_RE = re.compile(r"state-\d{8}(-[0-9a-f]{8})?")  # also keeps a pointer from escaping out_dir


def _encode(obj: Any, name: str, tensors: dict[str, torch.Tensor] | None) -> Any:
    """JSON-able copy of `obj`; tensors go to `tensors` under `name` (a ref stays), tuples stay tuples."""
    if isinstance(obj, torch.Tensor):
        if tensors is None:
            raise CheckpointError(f"cannot save {name}: a tensor where JSON data was expected")
        tensors[name] = obj.detach().to("cpu", copy=True).contiguous()  # a copy: safetensors refuses shared storage
        return {"__tensor__": name}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CheckpointError(f"cannot save {name}: dict keys must be strings, got {list(obj)[:5]!r}")
        return {k: _encode(v, f"{name}/{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, tuple):  # optimizers keep betas as a tuple; JSON alone would return a list
        return {"__tuple__": [_encode(v, f"{name}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{name}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise CheckpointError(f"cannot save {name}: {type(obj).__name__} is not JSON-serialisable")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            if obj["__tensor__"] not in tensors:
                raise CheckpointError(f"{where}: missing tensor {obj['__tensor__']!r}")
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"}:
            return tuple(_decode(v, tensors, where) for v in obj["__tuple__"])
        return {k: _decode(v, tensors, where) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    return obj


def _fsync(path: Path) -> None:
    """fsync a file or folder, so a rename never publishes data still only in the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_train_state(out_dir: str | Path, *, trainable: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                     scheduler: Any, step: int, meta: dict) -> None:
    """Write the run's resume state to `out_dir` (see module doc); raise CheckpointError on unsavable data."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in trainable.items():
        _encode(v, f"trainable/{k}", tensors)
    opt_sd = optimizer.state_dict()
    opt_state = {str(pid): _encode(s, f"optimizer/{pid}", tensors) for pid, s in opt_sd["state"].items()}
    rng = {"torch": _encode(torch.get_rng_state(), "rng/torch", tensors)}
    if torch.cuda.is_available():
        rng["cuda"] = [_encode(s, f"rng/cuda/{i}", tensors) for i, s in enumerate(torch.cuda.get_rng_state_all())]
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["rng/numpy"] = torch.from_numpy(np.ascontiguousarray(keys, np.uint32).view(np.int32).copy())
    rng["numpy"] = [kind, int(pos), int(has_gauss), float(gauss)]
    rng["python"] = _encode(random.getstate(), "rng/python", None)
    groups = _encode(opt_sd["param_groups"], "optimizer/param_groups", tensors)
    doc = {"format": FORMAT, "version": VERSION, "step": int(step), "tensors": sorted(tensors),
           "optimizer": {"state": opt_state, "param_groups": groups},
           "scheduler": _encode(scheduler.state_dict(), "scheduler.state_dict()", None),
           "rng": rng, "meta": _encode(meta, "meta", None)}
    text = json.dumps(doc, indent=1)  # before touching the disk: a bad value must not leave litter

    name = f"state-{step:08d}"
    tmp = out / f"{name}.tmp-{secrets.token_hex(4)}"
    with reporting_full_disk(out / name):  # a full disk: the temp folder goes, the old state stays published
        tmp.mkdir()
        try:
            write_new_file(tmp / TENSORS, save(tensors))  # our own write: a full disk raises (fsync'd)
            maybe_crash("state-write")  # crash tests: a kill between the two files of one state
            write_new_file(tmp / META, text.encode("utf-8"))
            _fsync(tmp)
            with contextlib.suppress(Exception):  # an unreadable pointer is about to be replaced anyway
                if json.loads((out / POINTER).read_text("utf-8")).get("dir") == name:
                    name = f"{name}-{secrets.token_hex(4)}"  # same step saved twice: keep the named folder
            if (out / name).exists():  # leftover of a crash before the pointer moved: nothing names it
                shutil.rmtree(out / name)
            os.replace(tmp, out / name)
        except BaseException:
            with contextlib.suppress(Exception):
                shutil.rmtree(tmp)
            raise
    _fsync(out)
    atomic_write_text(out / POINTER, json.dumps({"format": FORMAT, "version": VERSION, "dir": name}) + "\n")
    _fsync(out)  # the pointer's rename is durable before anything it no longer names goes away
    for p in out.iterdir():
        old_dir = p.is_dir() and p.name.startswith("state-") and p.name != name
        stale_pointer = p.is_file() and p.name.startswith(f".{POINTER}.") and p.name.endswith(".tmp")
        if old_dir or stale_pointer:
            try:
                shutil.rmtree(p) if old_dir else p.unlink()
            except OSError as e:  # the new state is published; the next save retries the cleanup
                warnings.warn(f"could not remove old train state {p}: {e}", stacklevel=2)


def legacy_pickle_state(out_dir: str | Path) -> Path | None:
    """Path of an old pickle `train_state.pt` in `out_dir`, for the caller to refuse; never opened here."""
    path = Path(out_dir) / LEGACY
    return path if path.exists() else None


def _state_folder(out: Path) -> Path | None:
    """The state folder the pointer names (None without a pointer); a bad pointer is one line."""
    if not (out / POINTER).is_file():
        return None
    name = _json(out / POINTER, "a train-state pointer").get("dir")
    if not isinstance(name, str) or not _DIR_RE.fullmatch(name) or not (out / name).is_dir():
        gone = ", which is missing" if isinstance(name, str) and _DIR_RE.fullmatch(name) else ""
        raise CheckpointError(f"{out / POINTER}: 'dir' must name an existing state-NNNNNNNN folder, got {name!r}{gone}")
    return out / name


def published_step(out_dir: str | Path) -> int | None:
    """The step of the resume state `out_dir`'s pointer names; None without one (or unreadable)."""
    try:
        folder = _state_folder(Path(out_dir))
        return None if folder is None else int(_json(folder / META, "the train state's JSON")["step"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return None


def has_train_state(out_dir: str | Path) -> bool:
    """Whether `out_dir` holds a resume state (its pointer file)."""
    return (Path(out_dir) / POINTER).is_file()


def check_resumable(out_dir: str | Path, train_config: dict, keys: tuple[str, ...]) -> None:
    """Refuse, in one line, a folder holding a pickled state (never opened) or the state of a run
    whose settings `keys` differ from `train_config`; nothing to refuse for a new or same run.
    Reads JSON only, so the CLI runs it before any model loads and the trainer again before resuming."""
    out = Path(out_dir)
    legacy = legacy_pickle_state(out)
    if legacy is not None:
        raise CheckpointError(f"{legacy}: a pickled resume state of an older softcot; it is never unpickled. "
                              "Move it away (or use another --output-dir) to start a new run")
    folder = _state_folder(out)
    if folder is None:
        return
    meta = _json(folder / META, "the train state's JSON").get("meta")
    old = with_legacy_values("train", (meta.get("train_config") if isinstance(meta, dict) else None) or {})
    diff = [k for k in keys if old.get(k) != train_config.get(k)]
    if diff:
        raise ConfigError(f"{out}: holds a run with other settings ({', '.join(f'{k}={old.get(k)!r}' for k in diff)}); "
                          "use another --output-dir to start a new run")


def _json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; expected {what}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({str(e).splitlines()[0]}); expected {what}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        got = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else type(doc).__name__
        raise CheckpointError(f"{path}: expected {what} with format {FORMAT!r} version {VERSION}, got {got!r}")
    return doc


def load_train_state(out_dir: str | Path, optimizer: torch.optim.Optimizer, scheduler: Any, *,
                     restore_rng: bool = True) -> dict | None:
    """Restore optimizer, scheduler and RNG from `out_dir`; return {"step", "trainable", "meta", "path"}.

    None when `out_dir` has no pointer file. Any missing, corrupt or mismatched file raises
    CheckpointError (one line). Every file is read and checked before the optimizer is touched.
    """
    folder = _state_folder(Path(out_dir))
    if folder is None:
        return None
    doc = _json(folder / META, "the train state's JSON")
    try:
        tensors = load_file(str(folder / TENSORS))
    except Exception as e:  # safetensors raises its own error types on a broken header or short file
        msg = (str(e).splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"{folder / TENSORS}: not a readable safetensors file ({msg})") from None
    expected = doc.get("tensors")
    expected = set(expected) if isinstance(expected, list) and all(isinstance(k, str) for k in expected) else set()
    if expected != set(tensors):
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        what = f"missing tensor {missing[0]!r}" if missing else f"unexpected tensor {extra[0]!r}"
        raise CheckpointError(f"{folder / TENSORS}: {what}; expected the tensors listed in {folder / META}")
    try:
        step = int(doc["step"])
        opt_sd = {"state": {int(k): _decode(v, tensors, folder) for k, v in doc["optimizer"]["state"].items()},
                  "param_groups": _decode(doc["optimizer"]["param_groups"], tensors, folder)}
        sched_sd, rng, meta = doc["scheduler"], doc["rng"], doc["meta"]
        rng_py = _decode(rng["python"], tensors, folder)
        np_state = (rng["numpy"][0], tensors["rng/numpy"].numpy().view(np.uint32), *rng["numpy"][1:])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise CheckpointError(f"{folder / META}: missing or malformed entry ({type(e).__name__}: {e})") from None
    # torch checks group sizes but not state shapes; a wrong shape would only fail inside opt.step()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for pid, s in opt_sd["state"].items():
        for key, t in s.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and 0 <= pid < len(params) and t.shape != params[pid].shape:
                raise CheckpointError(f"{folder / TENSORS}: optimizer/{pid}/{key} has shape {tuple(t.shape)}, "
                                      f"expected {tuple(params[pid].shape)}")
    try:
        optimizer.load_state_dict(opt_sd)
        scheduler.load_state_dict(sched_sd)
        if restore_rng:
            torch.set_rng_state(tensors["rng/torch"])
            if torch.cuda.is_available() and "cuda" in rng:  # saved on GPU, resumed on CPU: nothing to restore
                cuda = [tensors[f"rng/cuda/{i}"] for i in range(len(rng["cuda"]))]
                torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
            np.random.set_state(np_state)
            random.setstate((rng_py[0], tuple(rng_py[1]), rng_py[2]))
    except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
        msg = (str(e).splitlines() or [""])[0]
        raise CheckpointError(f"{folder}: does not fit this optimizer/scheduler ({type(e).__name__}: {msg})") from None
    trainable = {k[len("trainable/"):]: v for k, v in tensors.items() if k.startswith("trainable/")}
    return {"step": step, "trainable": trainable, "meta": meta, "path": folder}
