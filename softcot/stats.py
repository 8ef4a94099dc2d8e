"""Small statistics for comparing methods on the same examples.

    lo, hi = paired_bootstrap(acc_softcot, acc_zero_shot)["ci95"]
"""
from __future__ import annotations

import numpy as np


def paired_bootstrap(a: list[float], b: list[float], *, n_resamples: int = 10_000, seed: int = 0) -> dict:
    """Mean of a - b (per example, e.g. accuracy averaged over seeds) and its 95 % percentile
    bootstrap interval, resampling examples with replacement (the pairing is kept)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"paired_bootstrap needs two equal-length non-empty lists, got {x.shape} and {y.shape}")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean_diff": float(d.mean()), "ci95": (float(lo), float(hi)), "n": len(d),
            "excludes_zero": bool(lo > 0 or hi < 0)}
