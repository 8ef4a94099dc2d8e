"""Method registry: name -> class, and builders from a config or a checkpoint folder.

    method = build_method(ModelConfig(method="softcot", assistant="a", llm="b"))
    method = load_method("runs/gsm8k")        # config + trained tensors

Adding a method is one file in this folder plus one line in `REGISTRY`. The registry names
classes by import path and imports them on first use, so `softcot --help` never loads torch.
"""
from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from softcot.config import ModelConfig
from softcot.errors import CheckpointError, ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from softcot.methods.base import Method

REGISTRY: dict[str, str] = {
    "zero-shot-cot": "zero_shot:ZeroShotCoT",
    "cot-unk": "cot_unk:CoTUnk",
    "assist-cot": "assist_cot:AssistCoT",
    "softcot": "softcot:SoftCoT",
    "softcot-pp": "softcot_pp:SoftCoTPlusPlus",
    "prompt-tuning": "prompt_tuning:PromptTuning",
    "lora": "lora:LoRA",
    "coconut": "coconut:Coconut",
    "softcot-qfree": "softcot_qfree:SoftCoTQFree",
    "lightthinker": "lightthinker:LightThinker",
    "softcot-lightthinker": "lightthinker:SoftCoTLightThinker",
    "reinject": "reinject:Reinject",
}
METHOD_NAMES = tuple(REGISTRY)
CONFIG_NAME = "softcot_config.json"


def method_class(name: str) -> type[Method]:
    if name not in REGISTRY:
        raise ConfigError(f"unknown method {name!r}; expected one of {list(REGISTRY)}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"softcot.methods.{module}"), cls)


def descriptions() -> dict[str, str]:
    """name -> one-line description (imports every method class)."""
    return {name: method_class(name).description for name in REGISTRY}


def __getattr__(name: str):
    if name == "METHODS":  # name -> class, imported on first use
        return {n: method_class(n) for n in REGISTRY}
    raise AttributeError(name)


def build_method(cfg: ModelConfig, device: str = "auto", *, models: dict | None = None) -> Method:
    """Load the frozen LMs named by `cfg` (or reuse already-loaded ones in `models`:
    {"llm": (model, tok), "assistant": (model, tok)}) and build the method, untrained."""
    from softcot.assistant import Assistant
    from softcot.frozen import load_frozen_lm
    from softcot.llm import FrozenLLM

    cls = method_class(cfg.method)
    models = models or {}
    if cls.needs_assistant and not cfg.assistant and "assistant" not in models:
        raise ConfigError(f"method {cfg.method!r} needs an assistant model (--assistant)")
    llm_model, llm_tok = models.get("llm") or load_frozen_lm(cfg.llm, cfg.dtype, device, cfg.attn_implementation)
    llm = FrozenLLM(llm_model, llm_tok, placeholder=cfg.llm_placeholder, begin=cfg.thought_begin,
                    end=cfg.thought_end, block=cfg.thought_block)
    assistant = None
    if cls.needs_assistant:
        a_model, a_tok = models.get("assistant") or load_frozen_lm(cfg.assistant, cfg.dtype, device, cfg.attn_implementation)
        assistant = Assistant(a_model, a_tok, placeholder=cfg.assistant_placeholder, layer=cfg.assistant_layer)
    return cls(cfg, llm, assistant)


def read_checkpoint_config(ckpt_dir: str | Path, **overrides) -> ModelConfig:
    """The config of a checkpoint folder with `overrides` (None values ignored) applied."""
    path = Path(ckpt_dir) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; expected a checkpoint folder written by `softcot train`")
    cfg = ModelConfig.from_json(path)
    return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})


def load_method(ckpt_dir: str | Path, device: str = "auto", **overrides) -> Method:
    """Rebuild a saved method: its config JSON, the frozen LMs it names, its trained tensors.
    `overrides` replace config fields (e.g. n_thoughts=4, llm="local/copy", task="date")."""
    method = build_method(read_checkpoint_config(ckpt_dir, **overrides), device)
    method.load_trained(ckpt_dir)
    return method
