"""Method registry: name -> class, and builders from a config or a checkpoint folder.

    method = build_method(SoftCoTConfig(method="softcot", assistant="a", llm="b"))
    method = load_method("runs/gsm8k")        # config + trained tensors
"""
from __future__ import annotations

from pathlib import Path

from softcot.assistant import Assistant
from softcot.config import SoftCoTConfig
from softcot.errors import CheckpointError, ConfigError
from softcot.frozen import load_frozen_lm
from softcot.llm import FrozenLLM
from softcot.methods.base import CONFIG_NAME, Method
from softcot.methods.assist_cot import AssistCoT
from softcot.methods.coconut import Coconut
from softcot.methods.cot_unk import CoTUnk
from softcot.methods.lora import LoRA
from softcot.methods.prompt_tuning import PromptTuning
from softcot.methods.softcot import SoftCoT
from softcot.methods.softcot_pp import SoftCoTPlusPlus
from softcot.methods.zero_shot import ZeroShotCoT

METHODS: dict[str, type[Method]] = {
    m.name: m for m in (ZeroShotCoT, CoTUnk, AssistCoT, SoftCoT, SoftCoTPlusPlus, PromptTuning, LoRA, Coconut)
}


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; expected one of {sorted(METHODS)}")
    return METHODS[name]


def build_method(cfg: SoftCoTConfig, device: str = "auto", *, models: dict | None = None) -> Method:
    """Load the frozen LMs named by `cfg` (or reuse already-loaded ones in `models`:
    {"llm": (model, tok), "assistant": (model, tok)}) and build the method, untrained."""
    cls = method_class(cfg.method)
    models = models or {}
    llm_model, llm_tok = models.get("llm") or load_frozen_lm(cfg.llm, cfg.dtype, device)
    llm = FrozenLLM(llm_model, llm_tok, placeholder=cfg.llm_placeholder, begin=cfg.thought_begin, end=cfg.thought_end)
    assistant = None
    if cls.needs_assistant:
        if not cfg.assistant:
            raise ConfigError(f"method {cfg.method!r} needs an assistant model (--assistant)")
        a_model, a_tok = models.get("assistant") or load_frozen_lm(cfg.assistant, cfg.dtype, device)
        assistant = Assistant(a_model, a_tok, placeholder=cfg.assistant_placeholder, layer=cfg.assistant_layer)
    return cls(cfg, llm, assistant)


def load_method(ckpt_dir: str | Path, device: str = "auto", **overrides) -> Method:
    """Rebuild a saved method: its config JSON, the frozen LMs it names, its trained tensors.
    `overrides` replace config fields (e.g. n_thoughts=4, llm="local/copy")."""
    path = Path(ckpt_dir) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: not found; expected a checkpoint folder written by `softcot train`")
    cfg = SoftCoTConfig.from_json(path)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    cfg.__post_init__()
    method = build_method(cfg, device)
    method.load_trained(ckpt_dir)
    return method
