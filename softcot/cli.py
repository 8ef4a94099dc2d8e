"""The `softcot` command. Flags are generated from the config dataclasses (their help and allowed
values included), so the CLI, the Python API and YAML presets (`--preset file.yaml` with sections
model / train / eval / decoding) share one source.

    softcot methods                                   # every method with a one-line description
    softcot train --assistant A --llm L --task gsm8k --train-file train.jsonl --output-dir runs/x
    softcot generate --checkpoint runs/x --question "Tom has 3 apples ..." --n-thoughts 4
    softcot eval --checkpoint runs/x --task gsm8k --data-file test.jsonl --do-sample --seeds 41-45
    softcot report runs/demo --out report/
    softcot demo [--quick]

Bad input ends with one line `softcot: error: ...` and exit code 2. Only the standard library and
the config module load before a command runs, so `--help` is instant.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from softcot.config import SECTIONS, DecodingConfig, EvalConfig, ModelConfig, TrainConfig, from_dict, load_yaml_preset
from softcot.errors import CheckpointError, ConfigError, SoftCoTError
from softcot.checks import (check_checkpoint, check_demo, check_device, check_eval_output, check_models,
                            check_output_dir, check_output_file, check_tracker, check_train_output, device_for,
                            resolve_device_args)
from softcot.tasks import TASKS

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register `softcot NAME`: the decorated function adds arguments; `run_NAME` runs it."""

    def deco(add_args):
        COMMANDS[name] = (help, add_args, globals()[f"run_{name.replace('-', '_')}"])
        return add_args

    return deco


# ---- dataclass <-> argparse ------------------------------------------------------------------
def _flag_type(default: Any) -> Callable[[str], Any]:
    return type(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else str


def add_dataclass_args(p: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), prefix: str = "") -> None:
    """One flag per field (`--field-name`, help and choices from the field); a config section
    (ModelConfig.lora) becomes `--lora-r`, `--lora-alpha`, ..."""
    group = p.add_argument_group(prefix.rstrip("_") or cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            add_dataclass_args(p, type(default), prefix=f"{prefix}{f.name}_")
            continue
        dest = prefix + f.name
        flag = "--" + dest.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {default!r})".strip()
        if isinstance(default, bool):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            choices = f.metadata.get("choices")
            if f.name == "method" and cls is ModelConfig:
                from softcot.methods import METHOD_NAMES  # no torch: the registry imports lazily

                choices = METHOD_NAMES
            group.add_argument(flag, dest=dest, type=_flag_type(default), default=None, choices=choices,
                               metavar=None if choices else f.name.upper(), help=help_text)


def dataclass_from(cls: type, args: argparse.Namespace, preset: dict[str, Any], section: str, prefix: str = "", **forced):
    """Defaults < preset section < command-line flags < forced values."""
    data = dict(preset.get(section) or {})
    for f in dataclasses.fields(cls):
        if f.name in SECTIONS and cls is ModelConfig:
            sub = data.get(f.name) or {}
            for g in dataclasses.fields(SECTIONS[f.name]):
                v = getattr(args, f"{f.name}_{g.name}", None)
                if v is not None:
                    sub = {**sub, g.name: v}
            if sub:
                data[f.name] = sub
            continue
        v = getattr(args, prefix + f.name, None)
        if v is not None:
            data[f.name] = v
    data.update({k: v for k, v in forced.items() if v is not None})
    return from_dict(cls, data, source=f"{args.preset or 'arguments'} [{section}]")


def preset_of(args: argparse.Namespace) -> dict[str, Any]:
    return load_yaml_preset(args.preset) if getattr(args, "preset", None) else {}


def hold_output(args: argparse.Namespace, folder: str | Path, flag: str = "--output-dir") -> None:
    """Hold the command's output folder until the command ends, or refuse at once (one line naming
    the live run holding it: softcot.lock). Called after the folder checks, before any model loads."""
    from softcot.lock import output_lock

    locks = getattr(args, "locks", None)
    (locks or contextlib.ExitStack()).enter_context(output_lock(folder, flag))  # no stack: held till exit


def examples_from_questions(questions: list[str], task: str):
    from softcot.data import Example

    for q in questions:
        if not q.strip():
            raise ConfigError(f"--question {q!r}: empty or whitespace-only; expected the question text")
    return [Example(id=f"q{i}", task=task, question=q, answer="") for i, q in enumerate(questions)]


# ---- methods -----------------------------------------------------------------------------------
def run_methods(args: argparse.Namespace) -> int:
    from softcot.methods import descriptions, method_class

    for name, text in descriptions().items():
        print(f"{name:15s} {method_class(name).trains_what or 'training-free':17s} {text}")
    print("\ntasks: " + ", ".join(TASKS))
    return 0


@command("methods", "list the methods (and tasks) with a one-line description each")
def add_methods(p: argparse.ArgumentParser) -> None:
    pass


# ---- train -----------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    from softcot.data import load_examples

    preset = preset_of(args)
    mcfg = dataclass_from(ModelConfig, args, preset, "model")
    tcfg = dataclass_from(TrainConfig, args, preset, "train")
    if not tcfg.train_file:
        raise ConfigError("--train-file is required (a training file of the task's native format)")
    check_device(args.device)
    from softcot.methods import method_class
    from softcot.train import applied_config

    tcfg = applied_config(method_class(mcfg.method), mcfg, tcfg)  # the init a run records (and resumes as)
    # every input is read and checked before the (slow) model loading
    check_output_dir(tcfg.output_dir)
    hold_output(args, tcfg.output_dir)  # before its resume state is read: a live run may be writing it
    check_train_output(tcfg)
    check_tracker(tcfg)
    from softcot.methods import build_method, method_class

    if not method_class(mcfg.method).trains_what:
        raise ConfigError(f"--method {mcfg.method}: training-free, nothing to train; use `softcot eval` directly")
    check_models(mcfg)
    train_ex = load_examples(mcfg.task, tcfg.train_file, split=tcfg.train_split, limit=tcfg.limit or None)
    dev_ex = load_examples(mcfg.task, tcfg.dev_file, split=tcfg.dev_split) if tcfg.dev_file else None
    from softcot.train import train
    from softcot.utils import seed_everything

    seed_everything(tcfg.seed)  # the trainable part's initialisation follows --seed (every process alike)
    method = build_method(mcfg, device_for(args.device))
    summary = train(method, tcfg, train_ex, dev_ex)
    print(json.dumps(summary, indent=2))
    logging.getLogger("softcot").info("saved to %s", tcfg.output_dir)
    return 0


@command("train", "train a method's trainable part (SoftCoT: the projection)")
def add_train(p: argparse.ArgumentParser) -> None:
    add_dataclass_args(p, ModelConfig, skip=("version",))
    add_dataclass_args(p, TrainConfig)


# ---- generate ----------------------------------------------------------------------------------
def load_or_build(args: argparse.Namespace, preset: dict, **overrides):
    """A trained checkpoint (`--checkpoint`) or a method built from the model flags."""
    from softcot.methods import build_method, load_method, read_checkpoint_config

    if args.checkpoint:
        keys = ("n_thoughts", "llm", "assistant", "dtype", "attn_implementation", "thought_block")
        ov = {k: getattr(args, k, None) for k in keys}
        ov.update(overrides)
        if not Path(args.checkpoint).is_dir():
            raise CheckpointError(f"--checkpoint {args.checkpoint}: folder not found; expected a folder written by "
                                  "`softcot train`")
        cfg = read_checkpoint_config(args.checkpoint, **ov)  # fails fast on a broken folder
        dims = check_models(cfg, f"{Path(args.checkpoint) / 'softcot_config.json'}: ", tuple(k for k in ov if ov[k]))
        check_checkpoint(Path(args.checkpoint), cfg, dims)
        return load_method(args.checkpoint, device_for(args.device), **ov)
    cfg = dataclass_from(ModelConfig, args, preset, "model", **overrides)
    check_models(cfg)
    return build_method(cfg, device_for(args.device))


def run_generate(args: argparse.Namespace) -> int:
    from softcot.data import load_examples
    from softcot.scoring import extract_answer
    from softcot.utils import seed_everything

    preset = preset_of(args)
    dec = dataclass_from(DecodingConfig, args, preset, "decoding")
    if not (args.input_file or args.question):
        raise ConfigError("give --question TEXT (repeatable) or --input-file FILE")
    if args.batch_size < 1 or args.limit < 0:
        raise ConfigError("--batch-size must be >= 1 and --limit >= 0")
    check_device(args.device)
    if args.output:
        check_output_file(args.output)
    task = args.task or (preset.get("model") or {}).get("task") or "gsm8k"
    if args.input_file:  # read before loading models: a bad file costs seconds, not minutes
        examples = load_examples(task, args.input_file, limit=args.limit or None)
    else:
        examples = examples_from_questions(args.question, task)
    method = load_or_build(args, preset, task=args.task)
    seed_everything(args.seed)
    rows = []
    for i in range(0, len(examples), args.batch_size):
        batch = examples[i : i + args.batch_size]
        for ex, comps in zip(batch, method.generate(batch, dec)):
            answers = [extract_answer(c, ex.task, options=ex.options) for c in comps]
            row = {"id": ex.id, "question": ex.question, "answers": answers, "completions": list(comps)}
            rows.append(row)
            if not args.output:
                print(json.dumps(row, ensure_ascii=False), flush=True)
    if args.output:
        from softcot.utils import atomic_write_text

        atomic_write_text(args.output, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        logging.getLogger("softcot").info("wrote %d rows to %s", len(rows), args.output)
    return 0


@command("generate", "generate answers with a trained checkpoint or a training-free method")
def add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="folder written by `softcot train`")
    p.add_argument("--question", action="append", help="a question (repeatable)")
    p.add_argument("--input-file", help="a data file of the task's native format")
    p.add_argument("--limit", type=int, default=0, help=">0 uses only the first LIMIT examples of --input-file")
    p.add_argument("--batch-size", type=int, default=8, help="questions per generation batch (default: 8)")
    p.add_argument("--seed", type=int, default=41, help="sampling seed (default: 41)")
    p.add_argument("--output", help="JSONL output (default: stdout)")
    add_dataclass_args(p, ModelConfig, skip=("version",))
    add_dataclass_args(p, DecodingConfig)
    p.set_defaults(task=None)


# ---- eval and report ------------------------------------------------------------------------------
def run_eval(args: argparse.Namespace) -> int:
    from softcot.data import load_examples

    preset = preset_of(args)
    ecfg = dataclass_from(EvalConfig, args, preset, "eval")
    dec = dataclass_from(DecodingConfig, args, preset, "decoding")
    if not ecfg.data_file:
        raise ConfigError("--data-file is required (an evaluation file of the task's native format)")
    check_device(args.device)
    check_output_dir(ecfg.output_dir)
    hold_output(args, ecfg.output_dir)  # before its predictions are read: a live run may be appending
    check_eval_output(ecfg.output_dir)
    examples = load_examples(ecfg.task, ecfg.data_file, split=ecfg.split, limit=ecfg.limit or None)
    from softcot.evaluate import evaluate

    # the prompt family follows the evaluated task (e.g. Date Understanding with a GSM8K projection)
    method = load_or_build(args, preset, task=ecfg.task)
    from softcot.evaluate import format_table

    metrics = evaluate(method, examples, ecfg, dec)
    if metrics:  # the main process (the others return {})
        print(format_table(metrics))
    logging.getLogger("softcot").info("predictions and metrics in %s", ecfg.output_dir)
    return 0


@command("eval", "evaluate a method on a task: predictions.jsonl, metrics.json, a table")
def add_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="folder written by `softcot train` (else: --method and model flags)")
    add_dataclass_args(p, EvalConfig)
    add_dataclass_args(p, ModelConfig, skip=("version", "task", "n_thoughts"))
    add_dataclass_args(p, DecodingConfig)


def run_report(args: argparse.Namespace) -> int:
    from softcot.report import write_report

    check_output_dir(args.out, "--out")
    write_report(args.runs, args.out)
    return 0


@command("report", "methods x datasets table (mean +- std) and a PNG chart from eval runs")
def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="eval folders, or folders searched for them (e.g. runs/demo)")
    p.add_argument("--out", default="report", help="output folder for report.md, report.json, report.png")


# ---- demo ---------------------------------------------------------------------------------------
def run_demo(args: argparse.Namespace) -> int:
    from softcot.demo import DemoConfig, run_demo as demo

    cfg = dataclass_from(DemoConfig, args, preset_of(args), "demo")
    check_device(args.device)
    check_demo(cfg)
    hold_output(args, cfg.sized().output_dir)  # the whole demo folder; its own train/eval steps take no lock
    demo(cfg, device_for(args.device))
    return 0


@command("demo", "the whole pipeline on the embedded mini world (or your models/data): table, report, plots")
def add_demo(p: argparse.ArgumentParser) -> None:
    from softcot.demo import DemoConfig

    add_dataclass_args(p, DemoConfig)


# ---- import the paper's projection -------------------------------------------------------------
def run_import_reference(args: argparse.Namespace) -> int:
    from softcot.methods import build_method

    check_device(args.device)
    cfg = dataclass_from(ModelConfig, args, preset_of(args), "model", method="softcot",
                         projection={"kind": "linear", "norm": "none"})
    check_output_dir(args.output_dir)
    d_a, d_llm = check_models(cfg)
    from softcot.projection import load_reference_projection

    if not Path(args.projection_bin).is_file():
        raise CheckpointError(f"--projection-bin {args.projection_bin}: file not found")
    if d_a and d_llm:  # read (weights only, never arbitrary pickles) and shape-checked before the models load
        load_reference_projection(args.projection_bin, d_a, d_llm)
    method = build_method(cfg, args.device)
    method.load_reference(args.projection_bin)
    method.save(args.output_dir)
    logging.getLogger("softcot").info("imported %s -> %s", args.projection_bin, args.output_dir)
    return 0


@command("import-reference", "convert the paper's projection.bin into a softcot checkpoint")
def add_import_reference(p: argparse.ArgumentParser) -> None:
    p.add_argument("--projection-bin", required=True, help="the reference code's projection.bin")
    p.add_argument("--output-dir", required=True, help="checkpoint folder to write")
    add_dataclass_args(p, ModelConfig, skip=("version", "method", "projection"))


# ---- lm-evaluation-harness ---------------------------------------------------------------------
def run_lm_eval(args: argparse.Namespace) -> int:
    from softcot.harness.cli import run

    return run(args.lm_eval_args)


@command("lm-eval", "lm-evaluation-harness with every softcot method as model `softcot` (needs softcot[lm-eval])")
def add_lm_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("lm_eval_args", nargs=argparse.REMAINDER, metavar="...",
                   help="lm-eval's own command line: run --model softcot --model_args checkpoint=DIR --tasks ...")


# ---- entry point ----------------------------------------------------------------------------------
NO_DEVICE_FLAGS = ("methods", "lm-eval")  # lm-eval has its own --device


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors: one line, exit code 2
        self.exit(2, f"softcot: error: {self.prog}: {' '.join(message.split())}\n")


def build_parser() -> argparse.ArgumentParser:
    from softcot import __version__

    parser = _Parser(prog="softcot", description="SoftCoT: soft chain-of-thought for frozen LLMs")
    parser.add_argument("--version", action="version", version=f"softcot {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name not in NO_DEVICE_FLAGS:
            p.add_argument("--preset", help="YAML preset with sections model / train / eval / decoding (a file "
                           "or a bundled name, e.g. paper-qwen-gsm8k)")
            p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ... (default: auto)")
            p.add_argument("--device-map", default=None, choices=("auto", "balanced", "sequential"),
                           help="shard the frozen LMs over all visible GPUs (then CPU memory) in one process, for "
                                "models that fit no single device (accelerate big-model loading; not with "
                                "multi-process runs)")
            p.add_argument("--threads", type=int, default=0,
                           help="CPU threads per process (default 0: the CPUs this process may use, shared "
                                "among the processes of this machine)")
        add_args(p)
    return parser


def _lm_eval_legacy_form(argv: list[str]) -> list[str]:
    """`softcot [-q] lm-eval --model ...`: lm-eval's legacy form (no subcommand) means `lm-eval run ...`.
    argparse would read a flag right after `lm-eval` as softcot's own, so `run` goes in before it. The
    command is the first word that is not a global flag (softcot's global flags take no value)."""
    cmd = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if cmd is not None and argv[cmd] == "lm-eval":
        nxt = argv[cmd + 1 : cmd + 2]
        if nxt and nxt[0].startswith("-") and nxt[0] not in ("-h", "--help"):
            return [*argv[: cmd + 1], "run", *argv[cmd + 1 :]]
    return argv


def main(argv: list[str] | None = None) -> int:
    argv = _lm_eval_legacy_form(sys.argv[1:] if argv is None else list(argv))
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="[softcot] %(message)s",
                        stream=sys.stderr)
    try:
        with contextlib.ExitStack() as args.locks:  # output folders held (hold_output) until the command ends
            if args.command not in NO_DEVICE_FLAGS:
                args.device = resolve_device_args(args)
            return COMMANDS[args.command][2](args)
    except (SoftCoTError, ValueError, OSError) as e:  # DataError is a ValueError; files: OSError
        msg = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):  # a write not reported as DiskFull
            msg = f"no space left on device while writing {e.filename or 'a file'}; free space and rerun the same command"
        print(f"softcot: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("softcot: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
