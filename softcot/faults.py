"""Fault injection for the crash tests: `SOFTCOT_FAULT="point:k[,point:k...]"` kills this process
with SIGKILL (no cleanup, no flush: a real crash) the k-th time it reaches `point`.

Points: train-step (after an optimizer step, before its checkpoint), state-write (inside a
checkpoint write, after the tensors and before the pointer), eval-batch (after a batch's
predictions were appended). `point:k@r` fires on process rank r only. Unset: nothing happens.
"""
from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def maybe_crash(point: str) -> None:
    spec = os.environ.get("SOFTCOT_FAULT")
    if not spec:
        return
    _hits[point] = _hits.get(point, 0) + 1
    for item in spec.split(","):
        name, _, rest = item.strip().partition(":")
        count, _, on_rank = rest.partition("@")
        if name != point or not count.isdigit() or int(count) != _hits[point]:
            continue
        if on_rank and on_rank != os.environ.get("RANK", "0"):
            continue
        os.kill(os.getpid(), signal.SIGKILL)
