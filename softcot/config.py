"""Typed configs: one source for the Python API, the CLI flags (with their help) and YAML presets.

    cfg = ModelConfig(assistant="Qwen/Qwen2.5-1.5B-Instruct", llm="Qwen/Qwen2.5-7B-Instruct",
                      projection=ProjectionConfig(norm="match"))
    cfg.to_json("out/softcot_config.json"); ModelConfig.from_json("out/softcot_config.json")

Configs are frozen: a built method's settings never change behind its back; derive a new one with
`dataclasses.replace`. Every dataclass validates itself in `__post_init__` and raises
`ConfigError` (one line, naming the field and what was expected). Each field's `help` (and
`choices`) become the CLI flag's description. Method-specific settings live in their own section
(litgpt-style), e.g. `ModelConfig.lora.r`, flag `--lora-r`, YAML `model: {lora: {r: 8}}`.

This module imports nothing heavy (no torch), so `softcot --help` is instant.
"""
from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from softcot.errors import ConfigError
from softcot.tasks import TASKS

T = TypeVar("T")

DTYPES = ("float32", "bfloat16", "float16", "auto")
ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "eager")
PRESET_DIR = Path(__file__).parent / "configs"
PRESET_SECTIONS = ("model", "train", "eval", "decoding", "demo")  # `demo` is read by `softcot demo`


def opt(default: Any, help: str, *, choices: tuple | None = None) -> Any:
    """A config field with its CLI help (and allowed values)."""
    meta = {"help": help, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _check_choices(obj: Any, prefix: str = "") -> None:
    for f in fields(obj):
        choices = f.metadata.get("choices")
        if choices and getattr(obj, f.name) not in choices:
            raise ConfigError(f"{prefix}{f.name} must be one of {list(choices)}, got {getattr(obj, f.name)!r}")


# ---- method sections ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ProjectionConfig:
    """SoftCoT / SoftCoT++ projection: assistant hidden size -> LLM embedding size."""

    kind: str = opt("linear", "projection network: one Linear (the paper) or a 2-layer MLP", choices=("linear", "mlp"))
    hidden: int = opt(0, "MLP width (0 = the LLM's hidden size)")
    bias: bool = opt(True, "bias in the projection's Linear layers")
    norm: str = opt("match", "output norm: 'match' rescales to the LLM's embedding RMS (best in the dev sweep: "
                    "+16.1 points vs +4.1 for 'none')", choices=("none", "layernorm", "match"))

    def __post_init__(self) -> None:
        _check_choices(self, "projection.")
        _check(self.hidden >= 0, f"projection.hidden must be >= 0, got {self.hidden}")


@dataclass(frozen=True)
class AssistCoTConfig:
    hint_tokens: int = opt(64, "most tokens of the assistant's greedy hard-text hint")

    def __post_init__(self) -> None:
        _check(self.hint_tokens >= 1, f"assist_cot.hint_tokens must be >= 1, got {self.hint_tokens}")


@dataclass(frozen=True)
class LoRAConfig:
    r: int = opt(8, "LoRA rank")
    alpha: int = opt(16, "LoRA alpha (scale = alpha / r)")
    targets: str = opt("q_proj,k_proj,v_proj,o_proj", "comma-separated module names, or 'all-linear'")

    def __post_init__(self) -> None:
        _check(self.r >= 1, f"lora.r must be >= 1, got {self.r}")
        _check(self.alpha > 0, f"lora.alpha must be > 0, got {self.alpha}")
        _check(bool(self.targets.strip(" ,")), "lora.targets must name modules, e.g. 'q_proj,v_proj' or 'all-linear'")


@dataclass(frozen=True)
class CoconutConfig:
    thoughts_per_step: int = opt(2, "c: continuous thoughts that replace one reasoning step")
    max_stages: int = opt(3, "curriculum stages 0..max (stage k drops the first k steps)")
    stage: int = opt(0, "the stage a checkpoint is at: stage * c thoughts at inference (set by training)")

    def __post_init__(self) -> None:
        _check(self.thoughts_per_step >= 1, f"coconut.thoughts_per_step must be >= 1, got {self.thoughts_per_step}")
        _check(self.max_stages >= 0, f"coconut.max_stages must be >= 0, got {self.max_stages}")
        _check(0 <= self.stage <= self.max_stages,
               f"coconut.stage must be in 0..coconut.max_stages={self.max_stages}, got {self.stage}")


@dataclass(frozen=True)
class SoftCoTPPConfig:
    num_chains: int = opt(10, "K soft-thought chains per question, one learnable [INI]_k each")
    contrastive_weight: float = opt(0.1, "lambda of the InfoNCE diversity term")
    contrastive_temperature: float = opt(0.1, "tau of the InfoNCE term (cosine similarities / tau)")
    ini_noise: float = opt(0.1, "[INI]_k = placeholder embedding + ini_noise * RMS * N(0, 1)")

    def __post_init__(self) -> None:
        _check(self.num_chains >= 1, f"softcot_pp.num_chains must be >= 1, got {self.num_chains}")
        _check(self.contrastive_weight >= 0, f"softcot_pp.contrastive_weight must be >= 0, got {self.contrastive_weight}")
        _check(self.contrastive_temperature > 0,
               f"softcot_pp.contrastive_temperature must be > 0, got {self.contrastive_temperature}")
        _check(self.ini_noise > 0, f"softcot_pp.ini_noise must be > 0 (equal chains stay equal), got {self.ini_noise}")


@dataclass(frozen=True)
class PromptTuningConfig:
    tokens: int = opt(32, "learned LLM-space vectors; a run with n thoughts uses the first n")
    init: str = opt("vocab", "initial vectors: random token embeddings, or the placeholder's plus noise",
                    choices=("vocab", "placeholder"))

    def __post_init__(self) -> None:
        _check_choices(self, "prompt_tuning.")
        _check(self.tokens >= 1, f"prompt_tuning.tokens must be >= 1, got {self.tokens}")


@dataclass(frozen=True)
class QFreeConfig:
    """Question-free SoftCoT (`softcot-qfree`): the LLM prompt omits the question."""

    n_thoughts: int = opt(16, "soft thoughts N when none is asked for (this method ignores the top-level n_thoughts)")

    def __post_init__(self) -> None:
        _check(self.n_thoughts >= 1, f"softcot_qfree.n_thoughts must be >= 1, got {self.n_thoughts}")


@dataclass(frozen=True)
class LightThinkerConfig:
    """LightThinker-style step compression (`lightthinker`, `softcot-lightthinker`)."""

    gist_tokens: int = opt(2, "gist tokens fed after each finished step; the step's own KV entries are then dropped")
    boundary: str = opt("\n", "a token whose text holds this string ends a reasoning step")
    lora: bool = opt(True, "also train LoRA adapters on the LLM (section lora); off = the gist embeddings only")
    fade: str = opt("", "a curriculum: comma-separated attention weights (in (0, 1)) that later tokens still give a "
                    "compressed step's own tokens, one training phase each, before the final phase where they see "
                    "only the gists (e.g. '0.3,0.1'); '' = one phase, compressed from the start")
    tail_loss: float = opt(0.0, "weight of the gists' own target in training: gist j of a step predicts the step's "
                           "(g-1-j)-th last content token (trailing punctuation skipped: where a step states its result); 0 = off, "
                           "the gists learn only through the next step's tokens")

    def __post_init__(self) -> None:
        _check(self.gist_tokens >= 1, f"lightthinker.gist_tokens must be >= 1, got {self.gist_tokens}")
        _check(bool(self.boundary), "lightthinker.boundary must not be empty")
        _check(self.tail_loss >= 0, f"lightthinker.tail_loss must be >= 0, got {self.tail_loss}")
        try:
            ok = all(0 < float(w) < 1 for w in self.fade_weights())
        except ValueError:
            ok = False
        _check(ok, f"lightthinker.fade must be comma-separated numbers in (0, 1), got {self.fade!r}")

    def fade_weights(self) -> list[float]:
        return [float(w) for w in self.fade.split(",") if w.strip()]


@dataclass(frozen=True)
class ReinjectConfig:
    """Re-injection of the LLM's own hidden states at step boundaries (`reinject`)."""

    states: int = opt(1, "k: the last k last-layer hidden states of the finished step, projected and fed back")
    boundary: str = opt("\n", "a token whose text holds this string ends a reasoning step (re-injection fires)")

    def __post_init__(self) -> None:
        _check(self.states >= 1, f"reinject.states must be >= 1, got {self.states}")
        _check(bool(self.boundary), "reinject.boundary must not be empty")


SECTIONS: dict[str, type] = {"projection": ProjectionConfig, "assist_cot": AssistCoTConfig, "lora": LoRAConfig,
                             "coconut": CoconutConfig, "softcot_pp": SoftCoTPPConfig,
                             "prompt_tuning": PromptTuningConfig,
                             "softcot_qfree": QFreeConfig, "lightthinker": LightThinkerConfig,
                             "reinject": ReinjectConfig}
# Flat keys of configs written before the sections existed (old softcot_config.json, presets).
LEGACY_KEYS = {"projection": ("projection", "kind"), "projection_hidden": ("projection", "hidden"),
               "projection_bias": ("projection", "bias"), "projection_norm": ("projection", "norm"),
               "hint_tokens": ("assist_cot", "hint_tokens"), "lora_r": ("lora", "r"),
               "lora_alpha": ("lora", "alpha"), "lora_targets": ("lora", "targets"),
               "coconut_thoughts_per_step": ("coconut", "thoughts_per_step"),
               "coconut_max_stages": ("coconut", "max_stages"), "coconut_stage": ("coconut", "stage"),
               "num_chains": ("softcot_pp", "num_chains"), "contrastive_weight": ("softcot_pp", "contrastive_weight"),
               "contrastive_temperature": ("softcot_pp", "contrastive_temperature"),
               "ini_noise": ("softcot_pp", "ini_noise"), "prompt_tokens": ("prompt_tuning", "tokens"),
               "prompt_init": ("prompt_tuning", "init")}


# ---- the model ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a method: saved as `softcot_config.json` beside its tensors."""

    method: str = opt("softcot", "the method (`softcot methods` lists them)")
    assistant: str = opt("", "local folder or hub id of the frozen assistant LM")
    llm: str = opt("", "local folder or hub id of the frozen LLM")
    task: str = opt("gsm8k", "task: picks the prompt family and the answer scoring", choices=tuple(TASKS))
    n_thoughts: int = opt(4, "soft thoughts N at inference (the paper: 32 in training, 4 at test)")
    assistant_layer: int = opt(-1, "assistant hidden_states index for the thoughts; -1 = last layer after the final norm")
    thought_block: str = opt("preamble", "LLM thought block (every method's): a hint sentence + markers + slots, "
                             "markers + slots, or the slots alone (the fewest tokens)", choices=("preamble", "markers", "slots"))
    dtype: str = opt("float32", "dtype of the frozen LMs; the trainable part always stays fp32", choices=DTYPES)
    attn_implementation: str = opt("auto", "attention kernel of the frozen LMs: auto = transformers' default "
                                   "(sdpa); eager decodes small bf16 models faster on CPU (benchmarks/bench_eval.py)",
                                   choices=ATTN_IMPLEMENTATIONS)
    assistant_placeholder: str | None = opt(None, "assistant slot token (default: chosen from its vocabulary, logged)")
    llm_placeholder: str | None = opt(None, "LLM slot token (default: chosen from its vocabulary, logged)")
    thought_begin: str | None = opt(None, "marker text before the thought block (default: a spare special token)")
    thought_end: str | None = opt(None, "marker text after the thought block (default: a spare special token)")
    version: str = opt("", "package version that wrote the checkpoint (filled on save)")
    projection: ProjectionConfig = field(default_factory=ProjectionConfig)
    assist_cot: AssistCoTConfig = field(default_factory=AssistCoTConfig)
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    coconut: CoconutConfig = field(default_factory=CoconutConfig)
    softcot_pp: SoftCoTPPConfig = field(default_factory=SoftCoTPPConfig)
    prompt_tuning: PromptTuningConfig = field(default_factory=PromptTuningConfig)
    softcot_qfree: QFreeConfig = field(default_factory=QFreeConfig)
    lightthinker: LightThinkerConfig = field(default_factory=LightThinkerConfig)
    reinject: ReinjectConfig = field(default_factory=ReinjectConfig)

    def __post_init__(self) -> None:
        for name, cls in SECTIONS.items():  # sections given as dicts (JSON, YAML) become dataclasses
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, from_dict(cls, value, source=f"model.{name}"))
            _check(isinstance(getattr(self, name), cls), f"{name} must be a {cls.__name__} or a mapping")
        _check_choices(self)
        _check(self.n_thoughts >= 1, f"n_thoughts must be >= 1, got {self.n_thoughts}")

    def to_json(self, path: str | Path) -> None:
        save_json(self, path)

    @classmethod
    def from_json(cls, path: str | Path) -> "ModelConfig":
        """A saved config (a checkpoint's): settings it predates take their old values (LEGACY_VALUES)."""
        return load_json(cls, path, legacy="method")


SoftCoTConfig = ModelConfig  # the name of the first releases


@dataclass(frozen=True)
class TrainConfig:
    """How a method's trainable part is trained."""

    train_file: str = opt("", "training file of the task's native format (or hf:NAME[:CONFIG])")
    train_split: str | None = opt(None, "split inside the training file (e.g. StrategyQA 'train')")
    output_dir: str = opt("runs/softcot", "checkpoint folder (resumed when it holds the same run)")
    dev_file: str | None = opt(None, "dev file (default: hold out dev_fraction of the training file)")
    dev_split: str | None = opt(None, "split inside the dev file")
    dev_fraction: float = opt(0.05, "fraction of the training file held out as dev when no dev file is given")
    train_n_thoughts: int = opt(32, "soft thoughts N during training (the paper: 32)")
    train_n_mix: str = opt("", "train over a mix of N: 'LOW-HIGH' draws N uniformly per optimizer step "
                           "(seeded), so one projection serves every test N; '' = always train_n_thoughts")
    epochs: int = opt(10, "passes over the training set")
    max_steps: int = opt(0, ">0 stops after this many optimizer steps")
    init_only: bool = opt(False, "training-free: write a checkpoint of the trainable part's initialisation (SoftCoT: "
                          "the vocabulary bridge alone, see --projection-init) and its dev loss, with no training "
                          "step; it evaluates like any checkpoint")
    batch_size: int = opt(8, "examples per micro-batch")
    grad_accum: int = opt(1, "micro-batches per optimizer step")
    lr: float = opt(2e-5, "peak learning rate (AdamW)")
    weight_decay: float = opt(0.0, "AdamW weight decay")
    warmup_ratio: float = opt(0.03, "fraction of the steps spent warming up linearly")
    schedule: str = opt("linear", "decay after warmup", choices=("linear", "cosine", "constant"))
    max_grad_norm: float = opt(1.0, "gradient clipping norm")
    projection_init: str = opt("vocab", "SoftCoT's projection starts as: 'vocab' = the vocabulary bridge (least-squares "
                               "fit of assistant LM head -> token strings -> LLM input embeddings on the training "
                               "questions' slot states, no labels; softcot/bridge.py), 'random' = PyTorch's init",
                               choices=("vocab", "random"))
    group_by_length: bool = opt(True, "batch examples of similar length together (less padding; the batches "
                                "themselves are shuffled, seeded)")
    bf16: bool = opt(False, "bf16 autocast of the frozen LMs (use on GPUs and CPUs with native bf16)")
    gradient_checkpointing: bool = opt(False, "checkpoint the frozen LLM's layers (less memory, more time)")
    cache_thoughts: bool = opt(True, "compute the frozen assistant's thoughts once per example, before the first epoch")
    limit: int = opt(0, ">0 uses only the first `limit` training examples")
    max_length: int = opt(1024, "longest prompt + target in tokens (longer targets are truncated)")
    seed: int = opt(42, "seed of the data order, the dev split and initialisation")
    save_every: int = opt(0, "also checkpoint every k optimizer steps (0 = each epoch end only)")
    eval_every: int = opt(0, "dev loss every k steps (0 = each epoch end)")
    report_to: str = opt("none", "also log the metrics to a tracker through accelerate (files under "
                         "OUTPUT_DIR/logs); metrics.jsonl is always written", choices=("none", "tensorboard", "wandb"))

    def __post_init__(self) -> None:
        _check_choices(self)
        _check(self.train_n_thoughts >= 1, f"train_n_thoughts must be >= 1, got {self.train_n_thoughts}")
        if self.train_n_mix:
            lo, _, hi = self.train_n_mix.partition("-")
            _check(bool(re.fullmatch(r"[0-9]+-[0-9]+", self.train_n_mix)) and 1 <= int(lo) <= int(hi),
                   f"train_n_mix must be 'LOW-HIGH' with 1 <= LOW <= HIGH, got {self.train_n_mix!r}")
        _check(self.epochs >= 1 or self.max_steps > 0, "epochs must be >= 1 (or set max_steps)")
        _check(self.max_steps >= 0, f"max_steps must be >= 0, got {self.max_steps}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}")
        _check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"weight_decay must be >= 0, got {self.weight_decay}")
        _check(0 <= self.warmup_ratio < 1, f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        _check(self.max_grad_norm > 0, f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        _check(0 <= self.dev_fraction < 1, f"dev_fraction must be in [0, 1), got {self.dev_fraction}")
        _check(self.limit >= 0, f"limit must be >= 0, got {self.limit}")
        _check(self.max_length >= 8, f"max_length must be >= 8, got {self.max_length}")
        _check(self.save_every >= 0 and self.eval_every >= 0, "save_every and eval_every must be >= 0")

    def n_range(self) -> tuple[int, int]:
        """The (lowest, highest) training N."""
        if not self.train_n_mix:
            return self.train_n_thoughts, self.train_n_thoughts
        lo, _, hi = self.train_n_mix.partition("-")
        return int(lo), int(hi)


# Settings that must match to resume a training run (others, like save_every, may change).
RESUME_KEYS = ("train_file", "dev_file", "dev_fraction", "train_n_thoughts", "train_n_mix", "group_by_length", "epochs",
               "max_steps", "batch_size", "grad_accum", "lr", "weight_decay", "warmup_ratio", "schedule",
               "max_grad_norm", "projection_init", "limit", "seed")


@dataclass(frozen=True)
class DecodingConfig:
    """Batched greedy or sampled decoding."""

    max_new_tokens: int = opt(1024, "most new tokens per completion")
    min_new_tokens: int = opt(0, "fewest new tokens (forces the length; benchmarks)")
    do_sample: bool = opt(False, "sample instead of greedy decoding")
    temperature: float = opt(1.0, "sampling temperature")
    top_p: float = opt(1.0, "nucleus sampling mass (1 = off)")
    top_k: int = opt(0, "top-k sampling (0 = off)")
    num_samples: int = opt(1, "completions per question (majority vote; needs sampling)")

    def __post_init__(self) -> None:
        _check(self.max_new_tokens >= 1, f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        _check(0 <= self.min_new_tokens <= self.max_new_tokens,
               f"min_new_tokens must be in 0..max_new_tokens={self.max_new_tokens}, got {self.min_new_tokens}")
        _check(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        _check(0 < self.top_p <= 1, f"top_p must be in (0, 1], got {self.top_p}")
        _check(self.top_k >= 0, f"top_k must be >= 0, got {self.top_k}")
        _check(self.num_samples >= 1, f"num_samples must be >= 1, got {self.num_samples}")
        _check(self.do_sample or self.num_samples == 1, "num_samples > 1 needs sampling (do_sample=True)")


@dataclass(frozen=True)
class EvalConfig:
    """Which data a method is evaluated on, over which seeds, and how it is scored."""

    task: str = opt("gsm8k", "task of the evaluation file", choices=tuple(TASKS))
    data_file: str = opt("", "evaluation file of the task's native format (or hf:NAME[:CONFIG])")
    split: str | None = opt(None, "split inside the data file (e.g. StrategyQA 'test')")
    output_dir: str = opt("runs/eval", "folder for predictions.jsonl, metrics.json, summary.md (resumed)")
    seeds: list = opt([41, 42, 43, 44, 45], "sampling seeds: '41,42' or '41-45' (greedy uses the first)")
    batch_size: int = opt(16, "questions per generation batch")
    limit: int = opt(0, ">0 evaluates the first `limit` examples only")
    n_thoughts: int = opt(0, "soft thoughts N at inference (0 = the checkpoint's)")
    scoring: str = opt("default", "answer extraction (see softcot.scoring)", choices=("default", "reference", "strict"))
    prefix_cache: bool = opt(True, "compute the prompt prefix every question shares once (template + instruction)")

    def __post_init__(self) -> None:
        if isinstance(self.seeds, (str, int)):
            object.__setattr__(self, "seeds", parse_seeds(str(self.seeds)))
        object.__setattr__(self, "seeds", list(self.seeds))
        _check(all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds),
               f"seeds must be integers, got {self.seeds!r}")
        _check_choices(self)
        _check(len(self.seeds) >= 1, "seeds must name at least one seed")
        _check(len(set(self.seeds)) == len(self.seeds), f"seeds must not repeat, got {self.seeds}")
        _check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        _check(self.limit >= 0, f"limit must be >= 0, got {self.limit}")
        _check(self.n_thoughts >= 0, f"n_thoughts must be >= 0, got {self.n_thoughts}")


MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """"41,42" or "41-45" -> [41, 42, ...]; a reversed range is an error."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.strip().partition("-")
            if hi and int(hi) < int(lo):
                raise ConfigError(f"--seeds {text!r}: range {part.strip()!r} is reversed; expected LOW-HIGH")
            if hi and int(hi) - int(lo) >= MAX_SEEDS:
                raise ConfigError(f"--seeds {text!r}: range {part.strip()!r} names over {MAX_SEEDS} seeds")
            seeds += list(range(int(lo), int(hi) + 1)) if hi else [int(lo)]
    except ConfigError:  # a ValueError too: keep its own message
        raise
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected integers like '41,42' or '41-45'") from None
    return seeds


# ---- dict / JSON / YAML I/O --------------------------------------------------------------------------
def to_dict(obj: Any) -> dict:
    return dataclasses.asdict(obj)


# Settings added after runs were first written, each with the value that reproduces those runs.
# An older run's saved config without one of them is read as having that value, so adding a
# setting does not strand every earlier run; any other value is a different run (resume refused).
LEGACY_VALUES: dict[str, dict[str, Any]] = {
    "method": {"attn_implementation": "auto", "thought_block": "preamble"},
    "train": {"group_by_length": False, "projection_init": "random"},
}


def with_legacy_values(section: str, saved: dict) -> dict:
    """A saved config section with the settings it predates filled in (see LEGACY_VALUES)."""
    return {**LEGACY_VALUES.get(section, {}), **saved}


def from_dict(cls: type[T], data: dict, *, source: str = "config") -> T:
    """Build a dataclass from a dict, rejecting unknown keys and wrong types with a clear message."""
    _check(isinstance(data, dict), f"{source}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    _check(all(isinstance(k, str) for k in data), f"{source}: keys must be strings, got {sorted(map(repr, data))}")
    data = dict(data)
    if cls is ModelConfig:  # flat keys of older configs move into their section
        for old, (sec, key) in LEGACY_KEYS.items():
            if old in data and not (old == "projection" and isinstance(data[old], dict)):
                value = data.pop(old)  # first: a flat "projection" names the kind, not the section
                current = data.get(sec) or {}
                current = to_dict(current) if dataclasses.is_dataclass(current) else current
                _check(isinstance(current, dict), f"{source}: {sec} should be a mapping, got {current!r}")
                data[sec] = {**current, key: value}
    if cls is TrainConfig and "n_thoughts" in data:  # the training N's name before it said so
        data.setdefault("train_n_thoughts", data.pop("n_thoughts"))
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(known))
    _check(not unknown, f"{source}: unknown key(s) {unknown} for {cls.__name__}; expected some of {sorted(known)}")
    for k, v in data.items():
        default = known[k].default if known[k].default is not dataclasses.MISSING else known[k].default_factory()
        _check(_type_ok(default, v), f"{source}: {k} should be {type(default).__name__}, got {v!r}")
    try:
        return cls(**data)
    except TypeError as e:
        raise ConfigError(f"{source}: {e}") from None


def _type_ok(default: Any, value: Any) -> bool:
    """Loose type check of one value against its field's default (None defaults accept str)."""
    if default is None:
        return value is None or isinstance(value, str)
    if value is None:
        return False
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and _finite(value)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, (list, str, int)) and not isinstance(value, bool)
    if dataclasses.is_dataclass(default):
        return isinstance(value, (dict, type(default)))
    return True


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def save_json(obj: Any, path: str | Path) -> None:
    from softcot.utils import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(obj), indent=2, sort_keys=True) + "\n")


def load_json(cls: type[T], path: str | Path, legacy: str = "") -> T:
    path = Path(path)
    _check(path.is_file(), f"{path}: config file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; expected a JSON config") from None
    except RecursionError:
        raise ConfigError(f"{path}: JSON nested too deeply; expected a JSON config") from None
    _check(isinstance(data, dict), f"{path}: expected a JSON object")
    return from_dict(cls, with_legacy_values(legacy, data) if legacy else data, source=str(path))


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
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{path}: not valid YAML ({(str(e).splitlines() or [type(e).__name__])[0]})") from None
    _check(isinstance(data, dict), f"{path}: expected a mapping at top level")
    for sec, value in data.items():
        _check(sec in PRESET_SECTIONS, f"{path}: unknown section {sec!r}; expected some of {list(PRESET_SECTIONS)}")
        _check(isinstance(value, dict), f"{path}: section {sec!r} should be a mapping, got {type(value).__name__}")
    return {sec: {k: _embedded_path(v) for k, v in value.items()} for sec, value in data.items()}


def _embedded_path(value: Any) -> Any:
    """'miniworld:REL' in a preset names a file of the embedded mini world (its assets folder)."""
    if isinstance(value, str) and value.startswith("miniworld:"):
        from softcot.miniworld import ASSETS_DIR

        return str(ASSETS_DIR / value.removeprefix("miniworld:"))
    return value


__all__ = ["ModelConfig", "SoftCoTConfig", "ProjectionConfig", "AssistCoTConfig", "LoRAConfig", "CoconutConfig",
           "SoftCoTPPConfig", "PromptTuningConfig", "TrainConfig", "DecodingConfig", "EvalConfig", "parse_seeds",
           "to_dict", "from_dict", "opt"]
