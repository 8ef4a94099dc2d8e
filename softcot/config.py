"""Typed configs: one source for the Python API, the CLI flags and YAML presets.

    cfg = SoftCoTConfig(assistant="Qwen/Qwen2.5-1.5B-Instruct", llm="Qwen/Qwen2.5-7B-Instruct")
    cfg.to_json("out/softcot_config.json"); SoftCoTConfig.from_json("out/softcot_config.json")

Every dataclass validates itself in `__post_init__` and raises `ConfigError` (one line, naming
the field and what was expected).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from softcot.errors import ConfigError

T = TypeVar("T")

DTYPES = ("float32", "bfloat16", "float16", "auto")
PRESET_DIR = Path(__file__).parent / "configs"


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


@dataclass
class SoftCoTConfig:
    """Everything needed to rebuild a SoftCoT model: saved as `softcot_config.json` beside
    `projection.safetensors`."""

    method: str = "softcot"  # softcot | zero-shot-cot | ... (see `softcot.methods.METHODS`)
    assistant: str = ""  # local folder or hub id of the frozen assistant LM
    llm: str = ""  # local folder or hub id of the frozen LLM
    task: str = "gsm8k"  # task name, picks the prompt family (numeric / choice / yesno)
    n_thoughts: int = 4  # soft thoughts at inference (the paper: 32 in training, 4 at test)
    assistant_layer: int = -1  # hidden_states index; -1 = last layer after the final norm
    projection: str = "linear"  # "linear" | "mlp"
    projection_hidden: int = 0  # MLP width (0 = the LLM's hidden size)
    projection_bias: bool = True
    projection_norm: str = "none"  # "none" | "layernorm" | "match" (rescale to the LLM's embedding RMS)
    dtype: str = "float32"  # dtype of the frozen LMs; the projection always trains in fp32
    assistant_placeholder: str | None = None  # None = pick a spare special token of the assistant
    llm_placeholder: str | None = None  # None = pick a spare special token of the LLM
    thought_begin: str | None = None  # marker text before the thought block (None = auto)
    thought_end: str | None = None  # marker text after the thought block (None = auto)
    version: str = ""  # package version that wrote it (filled on save)
    # ---- method-specific settings ----
    # assist-cot
    hint_tokens: int = 64  # most tokens of the assistant's greedy hard-text hint
    # lora, coconut (LoRA on the LLM; dropout is 0: the frozen LLM always runs in eval mode)
    lora_r: int = 8
    lora_alpha: int = 16
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj"  # comma-separated module names, or "all-linear"
    # coconut
    coconut_thoughts_per_step: int = 2  # c: continuous thoughts that replace one reasoning step
    coconut_max_stages: int = 3  # curriculum stages 0..max (stage k drops the first k steps)
    coconut_stage: int = 0  # the stage this model is at: stage * c thoughts in training and inference
    # softcot-pp (SoftCoT++)
    num_chains: int = 10  # K soft-thought chains, one learnable [INI]_k each
    contrastive_weight: float = 0.1  # lambda of the InfoNCE diversity term
    contrastive_temperature: float = 0.1  # tau of the InfoNCE term (cosine similarities / tau)
    ini_noise: float = 0.1  # [INI]_k = placeholder embedding + ini_noise * RMS * N(0, 1)
    # prompt-tuning
    prompt_tokens: int = 32  # learned LLM-space vectors; a run with n thoughts uses the first n
    prompt_init: str = "vocab"  # "vocab" (random token embeddings) | "placeholder" (+ small noise)

    def __post_init__(self) -> None:
        _check(self.n_thoughts >= 1, f"n_thoughts must be >= 1, got {self.n_thoughts}")
        _check(self.projection in ("linear", "mlp"), f"projection must be 'linear' or 'mlp', got {self.projection!r}")
        _check(
            self.projection_norm in ("none", "layernorm", "match"),
            f"projection_norm must be 'none', 'layernorm' or 'match', got {self.projection_norm!r}",
        )
        _check(self.projection_hidden >= 0, f"projection_hidden must be >= 0, got {self.projection_hidden}")
        _check(self.dtype in DTYPES, f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        # ---- method-specific settings ----
        _check(self.hint_tokens >= 1, f"hint_tokens must be >= 1, got {self.hint_tokens}")
        _check(self.lora_r >= 1, f"lora_r must be >= 1, got {self.lora_r}")
        _check(self.lora_alpha > 0, f"lora_alpha must be > 0, got {self.lora_alpha}")
        _check(bool(self.lora_targets.strip(" ,")), "lora_targets must name modules, e.g. 'q_proj,v_proj' or 'all-linear'")
        _check(self.coconut_thoughts_per_step >= 1, f"coconut_thoughts_per_step must be >= 1, got {self.coconut_thoughts_per_step}")
        _check(self.coconut_max_stages >= 0, f"coconut_max_stages must be >= 0, got {self.coconut_max_stages}")
        _check(
            0 <= self.coconut_stage <= self.coconut_max_stages,
            f"coconut_stage must be in 0..coconut_max_stages={self.coconut_max_stages}, got {self.coconut_stage}",
        )
        _check(self.num_chains >= 1, f"num_chains must be >= 1, got {self.num_chains}")
        _check(self.contrastive_weight >= 0, f"contrastive_weight must be >= 0, got {self.contrastive_weight}")
        _check(self.contrastive_temperature > 0, f"contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        _check(self.ini_noise > 0, f"ini_noise must be > 0 (chains that start equal stay equal), got {self.ini_noise}")
        _check(self.prompt_tokens >= 1, f"prompt_tokens must be >= 1, got {self.prompt_tokens}")
        _check(self.prompt_init in ("vocab", "placeholder"), f"prompt_init must be 'vocab' or 'placeholder', got {self.prompt_init!r}")

    def to_json(self, path: str | Path) -> None:
        save_json(self, path)

    @classmethod
    def from_json(cls, path: str | Path) -> "SoftCoTConfig":
        return load_json(cls, path)


@dataclass
class TrainConfig:
    """How the projection (or any trainable method) is trained."""

    train_file: str = ""
    train_split: str | None = None  # split inside the training file (e.g. StrategyQA "train")
    output_dir: str = "runs/softcot"
    dev_file: str | None = None  # None: hold out `dev_fraction` of the training file
    dev_split: str | None = None
    dev_fraction: float = 0.05
    n_thoughts: int = 32  # soft thoughts during training (the paper: 32)
    epochs: int = 10
    max_steps: int = 0  # >0 stops after this many optimizer steps
    batch_size: int = 8
    grad_accum: int = 1
    lr: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    schedule: str = "linear"  # "linear" | "cosine" | "constant" decay after warmup
    max_grad_norm: float = 1.0
    bf16: bool = False  # bf16 autocast of the frozen LMs' forward passes
    gradient_checkpointing: bool = False
    cache_thoughts: bool = True  # the assistant is frozen: compute each example's thoughts once
    limit: int = 0  # >0 uses only the first `limit` training examples
    max_length: int = 1024  # longest prompt + target in tokens (longer examples are truncated)
    seed: int = 42
    save_every: int = 0  # also checkpoint every k optimizer steps (0 = each epoch end only)
    eval_every: int = 0  # dev loss every k steps (0 = each epoch end)

    def __post_init__(self) -> None:
        _check(self.n_thoughts >= 1, f"n_thoughts must be >= 1, got {self.n_thoughts}")
        _check(self.epochs >= 1 or self.max_steps > 0, "epochs must be >= 1 (or set max_steps)")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(0 <= self.dev_fraction < 1, f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        _check(self.schedule in ("linear", "cosine", "constant"), f"schedule must be linear|cosine|constant, got {self.schedule!r}")


@dataclass
class DecodingConfig:
    """Batched greedy or sampled decoding."""

    max_new_tokens: int = 1024
    min_new_tokens: int = 0  # forces length (benchmarks)
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    num_samples: int = 1  # completions per question

    def __post_init__(self) -> None:
        _check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        _check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        _check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _check(self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}")
        _check(self.do_sample or self.num_samples == 1, "num_samples > 1 needs sampling (do_sample=True)")


def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


def from_dict(cls: type[T], data: dict, *, source: str = "config") -> T:
    """Build a dataclass from a dict, rejecting unknown keys with a clear message."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    _check(not unknown, f"{source}: unknown key(s) {unknown} for {cls.__name__}; expected some of {sorted(known)}")
    return cls(**data)


def save_json(obj: Any, path: str | Path) -> None:
    from softcot.utils import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(obj), indent=2, sort_keys=True) + "\n")


def load_json(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    _check(path.is_file(), f"{path}: config file not found")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    _check(isinstance(data, dict), f"{path}: expected a JSON object")
    return from_dict(cls, data, source=str(path))


def bundled_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_yaml_preset(path: str | Path) -> dict[str, Any]:
    """A YAML preset: a mapping with optional sections `model`, `train`, `eval`, `decoding`.
    `path` is a file, or the name of a bundled preset (`softcot/configs/NAME.yaml`)."""
    import yaml

    path = Path(path)
    bundled = PRESET_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if not path.is_file() and bundled.is_file():
        path = bundled
    _check(path.is_file(), f"{path}: preset not found; expected a YAML file or one of {bundled_presets()}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    _check(isinstance(data, dict), f"{path}: expected a mapping at top level")
    return data


__all__ = ["SoftCoTConfig", "TrainConfig", "DecodingConfig", "to_dict", "from_dict", "field"]
