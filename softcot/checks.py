"""Input checks that run before any model loads, so a mistake costs seconds, not minutes: devices,
output folders and files, model folders, checkpoint folders (weights present and readable,
shapes that fit the models, resume state), each failing with one line naming the flag or file.

    check_device("cuda:3")                  # ConfigError: only 0 CUDA device(s) here
    check_output_dir("runs/x")              # a file in the way, a read-only folder, ...
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from softcot.config import ModelConfig, TrainConfig
from softcot.errors import CheckpointError, ConfigError


def check_device(device: str) -> None:
    """Refuse an unavailable device before any model loads."""
    if device in ("auto", "cpu") or device.startswith("map:"):
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: CUDA is not available in this torch build/machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type != "cpu":
        raise ConfigError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")


def device_for(device: str) -> str:
    """`auto` means this process's own device under `accelerate launch` (cuda:LOCAL_RANK)."""
    from softcot.distributed import default_device

    return default_device() if device == "auto" else device


# ---- early checks: every input is read before any model loads -----------------------------------
def _writable_folder(p: Path, flag: str, what: str) -> None:
    """The nearest existing folder at or above `p` must be a folder we may write into."""
    base = p
    while not base.exists() and base.parent != base:
        base = base.parent
    if not base.is_dir():
        raise ConfigError(f"{flag} {p}: {base} is a file, not a folder; expected {what}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {p}: folder {base} is not writable; expected {what}")


def check_output_dir(path: str | Path, flag: str = "--output-dir") -> None:
    """Refuse an output folder that is a file, lies below a file or cannot be written."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{flag} {p}: exists and is not a folder; expected a folder to write into")
    _writable_folder(p, flag, "a folder to write into")


def check_output_file(path: str | Path, flag: str = "--output") -> None:
    """Refuse an output file path that is a folder, or whose folder is missing or read-only."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p}: is a folder; expected a file path")
    if not p.parent.is_dir():
        raise ConfigError(f"{flag} {p}: folder {p.parent} does not exist; create it first")
    _writable_folder(p.parent, flag, "a file in a writable folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise ConfigError(f"{flag} {p}: file is not writable")


def safetensors_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes from a safetensors header (no data read): a torn or foreign file
    is refused in one line here, not after minutes of model loading."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise CheckpointError(f"{path}: not a readable safetensors file ({msg})") from None


WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "*.index.json", "*.h5", "*.msgpack")


def check_model_folder(path: str, what: str) -> int | None:
    """A local model folder holds a JSON config.json and readable weights (a hub id is left to the
    loader). Returns the model's hidden size when its config.json names one."""
    if not path:
        raise ConfigError(f"{what} is required (a local model folder or a hub id)")
    p = Path(path)
    if not (path.startswith((".", "/", "~")) or p.exists()):
        return None  # a hub id
    cfg_file = p / "config.json"
    if not cfg_file.is_file():
        raise ConfigError(f"{what}: model folder {path!r} not found or has no config.json; "
                          "expected a Hugging Face model folder")
    try:
        cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ConfigError(f"{cfg_file}: not valid JSON ({str(e).splitlines()[0][:120]}); expected the model's "
                          "config.json") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{cfg_file}: expected a JSON object, got {type(cfg).__name__}")
    weights = [f for pattern in WEIGHT_PATTERNS for f in sorted(p.glob(pattern))]
    if not weights:
        raise ConfigError(f"{what}: model folder {path!r} has no weights; expected model.safetensors "
                          "(or shards with an index)")
    for f in weights:
        if f.suffix == ".safetensors":
            safetensors_shapes(f)
    hidden = cfg.get("hidden_size", (cfg.get("text_config") or {}).get("hidden_size"))
    return hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else None


def check_models(cfg: ModelConfig, source: str = "", flags: tuple[str, ...] = ()) -> tuple[int | None, int | None]:
    """The method exists and its model folders look complete; (assistant, LLM) hidden sizes.
    A path read from a checkpoint's config is named by `source` unless its flag (`flags`) overrode it."""
    from softcot.methods import method_class

    def label(name: str) -> str:
        return f"{source}{name}" if source and name not in flags else f"--{name}"

    cls = method_class(cfg.method)
    llm = check_model_folder(cfg.llm, label("llm"))
    assistant = check_model_folder(cfg.assistant, label("assistant")) if cls.needs_assistant else None
    return assistant, llm


def check_checkpoint(ckpt: Path, cfg: ModelConfig, dims: tuple[int | None, int | None]) -> None:
    """The trained tensors are there and readable; SoftCoT's projection has this pair's shapes."""
    from softcot.methods import method_class

    cls = method_class(cfg.method)
    if not cls.trains_what:
        return
    weights = ckpt / cls.weights_name
    if not weights.is_file():
        raise CheckpointError(f"{weights}: not found; the checkpoint folder is incomplete")
    if weights.suffix != ".safetensors":
        return
    shapes = safetensors_shapes(weights)
    d_a, d_llm = dims
    if cfg.method == "softcot" and d_a and d_llm:
        import torch

        from softcot.projection import Projection

        p = cfg.projection
        with torch.device("meta"):
            want = {k: tuple(v.shape) for k, v in Projection(d_a, d_llm, kind=p.kind, hidden=p.hidden, bias=p.bias,
                                                               norm=p.norm).state_dict().items()}
        if set(shapes) != set(want):
            raise CheckpointError(f"{weights}: holds tensors {sorted(shapes)}, expected {sorted(want)}")
        for k, shape in shapes.items():
            if shape != want[k]:
                raise CheckpointError(f"{weights}: {k} has shape {shape}, expected {want[k]} for this assistant/LLM "
                                      "pair (was it trained for other models?)")


def check_tracker(tcfg: TrainConfig) -> None:
    """--report-to needs its package installed."""
    if tcfg.report_to == "none":
        return
    from accelerate.utils import is_tensorboard_available, is_wandb_available

    ok = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}[tcfg.report_to]()
    if not ok:
        raise ConfigError(f"--report-to {tcfg.report_to}: the {tcfg.report_to} package is not installed "
                          f"(pip install {tcfg.report_to})")


def check_train_output(tcfg: TrainConfig) -> None:
    """The output folder, and its resume state read before any model loads: a pickled one (never
    opened), a broken pointer or a run with other settings is refused in one line."""
    from softcot.config import RESUME_KEYS, to_dict
    from softcot.state import check_resumable

    check_output_dir(tcfg.output_dir)
    check_resumable(tcfg.output_dir, to_dict(tcfg), RESUME_KEYS)


def check_eval_output(out_dir: str) -> None:
    """An existing evaluation folder must hold a readable run_config.json beside its predictions."""
    out = Path(out_dir)
    check_output_dir(out)
    runcfg, preds = out / "run_config.json", out / "predictions.jsonl"
    if runcfg.exists():
        try:
            data = json.loads(runcfg.read_text(encoding="utf-8"))
        except (ValueError, RecursionError, OSError) as e:
            raise ConfigError(f"{runcfg}: not valid JSON ({str(e).splitlines()[0][:120]}); expected the run's "
                              "settings; use another --output-dir") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("method", "eval", "decoding")):
            raise ConfigError(f"{runcfg}: expected an object with 'method', 'eval' and 'decoding'; use another --output-dir")
    elif preds.exists():
        raise ConfigError(f"{preds}: exists without run_config.json; refusing to mix runs, use another --output-dir")
    if preds.is_file():
        for n, line in enumerate(preds.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            try:
                row = json.loads(line)
            except (ValueError, RecursionError):
                break  # a torn last line: the evaluation redoes its batch
            if not (isinstance(row, dict) and isinstance(row.get("seed"), int) and isinstance(row.get("batch"), int)):
                raise ConfigError(f"{preds}: line {n}: expected a prediction row with integer 'seed' and 'batch'; "
                                  "use another --output-dir")


def resolve_device_args(args: argparse.Namespace) -> str:
    """Thread count (set before any model loads) and the device string (`map:auto` = device_map)."""
    import os

    from softcot.utils import set_cpu_threads

    if args.threads < 0:
        raise ConfigError(f"--threads must be >= 0, got {args.threads}")
    set_cpu_threads(args.threads)
    if args.device_map:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("--device-map shards one process's models; it cannot be combined with a multi-process "
                              "launch (use one process, or data parallelism without --device-map)")
        if args.device not in ("auto", "cuda"):
            raise ConfigError(f"--device-map places the layers itself; drop --device {args.device}")
        return f"map:{args.device_map}"
    return args.device


def check_demo(cfg) -> None:
    """The demo's output folder and model folders (its settings validate themselves)."""
    check_output_dir(cfg.sized().output_dir)
    for flag in ("llm", "assistant"):
        if getattr(cfg, flag):
            check_model_folder(getattr(cfg, flag), f"--{flag}")


