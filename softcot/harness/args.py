"""The `softcot` lm-eval model's model_args: names, types, and the checks that run before any model
loads (no torch is imported here), each failing with one line naming the model_arg.

    checkpoint=runs/x[,n_thoughts=4]             a folder written by `softcot train`
    method=zero-shot-cot,llm=DIR_OR_HUB_ID       a training-free method (softcot methods lists them)
    method=softcot,assistant=A,llm=L             a method and its models (an untrained projection)
    + task, prompt, n_thoughts, thought_block, dtype, attn_implementation, device, batch_size
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from softcot.config import ATTN_IMPLEMENTATIONS, DTYPES
from softcot.errors import CheckpointError, ConfigError
from softcot.prompts import THOUGHT_BLOCKS
from softcot.tasks import TASKS

PROMPTS = ("method", "task")

# name -> (kind, help). kind: "str", "int", or a tuple of allowed values.
MODEL_ARGS: dict[str, tuple[Any, str]] = {
    "checkpoint": ("str", "folder written by `softcot train` (method and models are read from it)"),
    "method": ("str", "a softcot method (`softcot methods`), when there is no checkpoint"),
    "llm": ("str", "the frozen LLM: local folder or hub id (overrides a checkpoint's)"),
    "assistant": ("str", "the frozen assistant LM (SoftCoT, Assist-CoT, ...; overrides a checkpoint's)"),
    "n_thoughts": ("int", "soft thoughts N at inference (default: the checkpoint's, else 4)"),
    "task": (tuple(TASKS), "softcot task whose instruction heads the prompt (default: the checkpoint's, else gsm8k)"),
    "prompt": (PROMPTS, "method: softcot's instruction + lm-eval's text as the question, through the chat template "
                        "(what a projection is trained on); task: lm-eval's prompt as lm-eval's hf model reads it (raw "
                        "text without --apply_chat_template, the chat template with it), the thought block after it"),
    "thought_block": (THOUGHT_BLOCKS, "how the thought block reads (default: the checkpoint's, else preamble)"),
    "dtype": (DTYPES, "dtype of the frozen LMs (default float32)"),
    "attn_implementation": (ATTN_IMPLEMENTATIONS, "attention kernel of the frozen LMs"),
    "device": ("str", "auto | cpu | cuda | cuda:N (lm-eval's --device)"),
    "batch_size": ("int", "questions per batch (lm-eval's --batch_size)"),
    "max_batch_size": ("int", "accepted for lm-eval's CLI; unused (no automatic batch size)"),
}


@dataclasses.dataclass(frozen=True)
class HarnessArgs:
    checkpoint: str = ""
    method: str = ""
    llm: str = ""
    assistant: str = ""
    n_thoughts: int = 0
    task: str = ""
    prompt: str = "method"
    thought_block: str = ""
    dtype: str = ""
    attn_implementation: str = ""
    device: str = "auto"
    batch_size: int = 8
    max_batch_size: int = 0


def _typed(name: str, value: Any) -> Any:
    kind = MODEL_ARGS[name][0]
    if kind == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--model_args {name}={value}: expected a positive integer")
        return value
    value = "" if value is None else str(value)
    if kind == "str":
        if not value.strip():
            raise ConfigError(f"--model_args {name}=: empty; expected {MODEL_ARGS[name][1]}")
        return value
    if value not in kind:
        raise ConfigError(f"--model_args {name}={value}: expected one of {list(kind)}")
    return value


def split_pairs(text: str) -> dict[str, str]:
    """'k=v,k2=v2' -> {k: v, k2: v2}; an item without '=' fails with one line."""
    pairs = {}
    for item in filter(None, (s.strip() for s in (text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--model_args {item!r}: malformed; expected key=value pairs separated by commas")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_model_args(args: dict[str, Any] | str | None) -> HarnessArgs:
    """lm-eval's model_args (a dict, or its 'k=v,k2=v2' string) -> HarnessArgs, every key and value
    checked; unknown or malformed keys fail with one line."""
    if args is None:
        args = {}
    if isinstance(args, str):
        args = split_pairs(args)
    unknown = sorted(k for k in args if k not in MODEL_ARGS and k != "trust_remote_code")
    if unknown:
        raise ConfigError(f"--model_args {unknown[0]}: unknown model_arg; expected some of {list(MODEL_ARGS)}")
    values = {k: _typed(k, v) for k, v in args.items() if k in MODEL_ARGS and v is not None}
    h = HarnessArgs(**values)
    if bool(h.checkpoint) == bool(h.method):
        raise ConfigError("--model_args: give checkpoint=DIR (a folder written by `softcot train`) or "
                          "method=NAME with llm=... (and assistant=... where the method needs one), not both")
    return h


def overrides(h: HarnessArgs) -> dict[str, Any]:
    """The ModelConfig fields these model_args set (empty / 0 = not given)."""
    keys = ("llm", "assistant", "n_thoughts", "task", "thought_block", "dtype", "attn_implementation")
    return {k: getattr(h, k) for k in keys if getattr(h, k)}


def model_config(h: HarnessArgs):
    """The method's ModelConfig and its checkpoint folder (or None), every input checked before any
    model loads: the checkpoint folder and its weights' shapes, the method name, the model folders."""
    from softcot.checks import check_checkpoint, check_device, check_models
    from softcot.config import ModelConfig, from_dict
    from softcot.methods import method_class, read_checkpoint_config

    check_device(h.device)
    ov = overrides(h)
    if h.checkpoint:
        ckpt = Path(h.checkpoint)
        if not ckpt.is_dir():
            raise CheckpointError(f"--model_args checkpoint={h.checkpoint}: folder not found; expected a folder "
                                  "written by `softcot train`")
        cfg = read_checkpoint_config(ckpt, **ov)
        dims = check_models(cfg, f"{ckpt / 'softcot_config.json'}: ", tuple(ov))
        check_checkpoint(ckpt, cfg, dims)
        return cfg, ckpt
    try:
        method_class(h.method)
    except ConfigError as e:
        raise ConfigError(f"--model_args method={h.method}: {e}") from None
    cfg = from_dict(ModelConfig, {"method": h.method, **ov}, source="--model_args")
    if method_class(h.method).trains_what:
        import logging

        logging.getLogger("softcot").warning("method %s without a checkpoint: its %s is untrained", h.method,
                                             method_class(h.method).trains_what)
    check_models(cfg, "--model_args ")  # errors name the model_arg: "--model_args llm: ..."
    return cfg, None
