"""The mini world's recipe as Python configs, read from the bundled `miniworld` preset (the one
source of the recipe: `softcot demo`, `softcot train --preset miniworld` and benchmarks/seeds.py).

    mcfg, tcfg = miniworld_configs(seed=7, output_dir="runs/s7")   # ModelConfig, TrainConfig
"""
from __future__ import annotations

import dataclasses
import functools

from softcot.config import ModelConfig, TrainConfig, from_dict, load_yaml_preset


@functools.lru_cache(maxsize=1)
def miniworld_preset() -> dict:
    return load_yaml_preset("miniworld")


def miniworld_world() -> dict[str, str]:
    """Model folders and split files of the embedded mini world."""
    p = miniworld_preset()
    return {"llm": p["model"]["llm"], "assistant": p["model"]["assistant"], "train": p["train"]["train_file"],
            "dev": p["train"]["dev_file"], "test": p["eval"]["data_file"]}


def miniworld_configs(**train_overrides) -> tuple[ModelConfig, TrainConfig]:
    """The preset's ModelConfig and TrainConfig, with TrainConfig fields overridden."""
    p = miniworld_preset()
    mcfg = from_dict(ModelConfig, dict(p["model"]), source="miniworld preset [model]")
    tcfg = from_dict(TrainConfig, dict(p["train"]), source="miniworld preset [train]")
    return mcfg, dataclasses.replace(tcfg, **train_overrides)
