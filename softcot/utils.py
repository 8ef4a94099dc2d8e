"""Small shared helpers: seeding, device/dtype choice, atomic writes, JSONL appends, the logger."""
from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softcot.errors import DiskFull


log = logging.getLogger("softcot")  # the package's logger; the CLI attaches a handler


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_cpu_threads(n: int = 0) -> int:
    """torch's CPU threads for this process: n, or (n=0) the CPUs this process may use (its
    affinity mask, which honours taskset/cgroups) shared among the processes of this machine
    (LOCAL_WORLD_SIZE under accelerate/torchrun). Oversubscribing a small machine costs more than
    it gives: on a busy 2-core machine torch's default threads made every figure ~6x slower."""
    if n <= 0:
        if os.environ.get("OMP_NUM_THREADS"):  # the user (or a launcher) decided
            return torch.get_num_threads()
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        n = max(1, cpus // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    torch.set_num_threads(n)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its pool would compete with torch's
    log.debug("using %d CPU threads", n)
    return n


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX). Without it a bf16 matmul is
    emulated and was measured 53x slower than fp32 (AVX2-only CPU), so autocast must stay off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_bf16_ok(device: torch.device | str) -> bool:
    """bf16 autocast pays on CUDA and on CPUs with native bf16 only."""
    dev = torch.device(device)
    return dev.type == "cuda" or (dev.type == "cpu" and cpu_has_native_bf16())


def torch_dtype(name: str) -> torch.dtype | str:
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}[name]


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)  # a full disk, a spent quota


def intact_note(path: str | Path) -> str:
    """What a rerun finds intact after a write of `path` failed on a full disk: the training folder's
    last published checkpoint, or the evaluation folder's finished predictions (read from disk)."""
    for folder in list(Path(path).parents)[:3]:
        if (folder / "train_state.json").is_file() or (folder / "train_args.json").is_file():
            from softcot.state import published_step

            step = published_step(folder)
            kept = (f"the last good checkpoint (step {step}) in {folder} is intact" if step is not None
                    else f"no checkpoint of {folder} was saved yet")
            return kept + "; free space and rerun the same command to resume"
        if (folder / "run_config.json").is_file():
            n = 0
            for f in [folder / "predictions.jsonl", *sorted(folder.glob("predictions.part*.jsonl"))]:
                with contextlib.suppress(OSError):
                    for line in f.read_text(encoding="utf-8", errors="replace").splitlines():
                        try:
                            json.loads(line)
                        except ValueError:
                            break
                        n += 1
            return f"the {n} finished predictions in {folder} are intact; free space and rerun the same command to resume"
    return "free space and rerun the same command"


@contextlib.contextmanager
def reporting_full_disk(path: str | Path):
    """A full disk (ENOSPC, EDQUOT) inside becomes one DiskFull line naming `path` and what is intact."""
    try:
        yield
    except OSError as e:
        if e.errno not in NO_SPACE:
            raise
        raise DiskFull(path, intact_note(path)) from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_new_file(path: str | Path, data: bytes) -> None:
    """Create `path` (it must not exist) holding `data`, fsync'd."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file, and
    a full disk leaves the old file as it was (the temp file is removed) and raises DiskFull."""
    path = Path(path)
    with reporting_full_disk(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_save_safetensors(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict | None = None) -> None:
    """safetensors file written atomically (temp file in the same folder, fsync, rename)."""
    from safetensors.torch import save

    meta = {"format": "pt", **{k: str(v) for k, v in (metadata or {}).items()}}
    atomic_write_bytes(path, save(tensors, metadata=meta))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_jsonl(path: str | Path, rows: list[dict]) -> None:
    """Append whole lines and fsync, so an interrupted run keeps every finished row. An append that
    fails (a full disk) is cut back to the file's previous end: no part of this batch stays."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    with reporting_full_disk(path):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            end = os.fstat(fd).st_size
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, end)
                raise
        finally:
            os.close(fd)


def count_parameters(params) -> int:
    return sum(p.numel() for p in params)


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """A matplotlib figure written atomically as PNG, then closed."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
