"""Small shared helpers: seeding, device/dtype choice, atomic writes, JSONL appends, the logger."""
from __future__ import annotations

import json
import logging
import os
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch


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


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write to a temp file in the same folder, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
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
    """Append whole lines and flush, so an interrupted run keeps every finished row."""
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


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
