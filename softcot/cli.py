"""The `softcot` command. Flags are generated from the config dataclasses, so the CLI, the Python
API and YAML presets (`--preset file.yaml` with sections model/train/decoding) share one source.

    softcot train --assistant A --llm L --task gsm8k --train-file train.jsonl --output-dir runs/x
    softcot generate --checkpoint runs/x --question "Tom has 3 apples ..." --n-thoughts 4
    softcot generate --method zero-shot-cot --llm L --task gsm8k --input-file test.jsonl
    softcot import-reference --projection-bin projection.bin --assistant A --llm L --output-dir runs/ref
    softcot eval --checkpoint runs/x --task gsm8k --data-file test.jsonl --do-sample --seeds 41-45
    softcot report runs/a/eval runs/b/eval --out report/
    softcot demo [--quick]

Bad input ends with one line `softcot: error: ...` and exit code 2.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Callable

from softcot.config import DecodingConfig, SoftCoTConfig, TrainConfig, from_dict, load_yaml_preset
from softcot.errors import SoftCoTError

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register `softcot NAME`: the decorated function adds arguments; `run_NAME` runs it."""

    def deco(add_args):
        COMMANDS[name] = (help, add_args, globals()[f"run_{name.replace('-', '_')}"])
        return add_args

    return deco


# ---- dataclass <-> argparse ------------------------------------------------------------------
def add_dataclass_args(p: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), rename: dict | None = None) -> None:
    """One flag per field (`--field-name`); `rename` maps a field to another flag/dest when two
    dataclasses share a name (train: the model's inference N is `--infer-n-thoughts`)."""
    group = p.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        dest = (rename or {}).get(f.name, f.name)
        flag = "--" + dest.replace("_", "-")
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if isinstance(default, bool):
            group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction, default=None)
        else:
            typ = type(default) if isinstance(default, (int, float)) else str  # lists parse in __post_init__
            group.add_argument(flag, dest=dest, type=typ, default=None, help=f"(default: {default!r})")


def dataclass_from(cls: type, args: argparse.Namespace, preset: dict[str, Any], section: str, rename: dict | None = None, **forced):
    """Defaults < preset section < command-line flags < forced values."""
    data = dict(preset.get(section) or {})
    for f in dataclasses.fields(cls):
        v = getattr(args, (rename or {}).get(f.name, f.name), None)
        if v is not None:
            data[f.name] = v
    data.update({k: v for k, v in forced.items() if v is not None})
    return from_dict(cls, data, source=f"{args.preset or 'arguments'} [{section}]")


def preset_of(args: argparse.Namespace) -> dict[str, Any]:
    return load_yaml_preset(args.preset) if getattr(args, "preset", None) else {}


def examples_from_questions(questions: list[str], task: str):
    from softcot.data import Example

    return [Example(id=f"q{i}", task=task, question=q, answer="") for i, q in enumerate(questions)]


INFER_N = {"n_thoughts": "infer_n_thoughts"}  # train: --n-thoughts is the training N


# ---- train -----------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    from softcot.data import load_examples
    from softcot.methods import build_method
    from softcot.train import train

    preset = preset_of(args)
    mcfg = dataclass_from(SoftCoTConfig, args, preset, "model", rename=INFER_N)
    tcfg = dataclass_from(TrainConfig, args, preset, "train")
    if not tcfg.train_file:
        raise SoftCoTError("--train-file is required (a training file of the task's native format)")
    train_ex = load_examples(mcfg.task, tcfg.train_file, split=tcfg.train_split, limit=tcfg.limit or None)
    dev_ex = load_examples(mcfg.task, tcfg.dev_file, split=tcfg.dev_split) if tcfg.dev_file else None
    method = build_method(mcfg, args.device)
    if method.name == "coconut":  # the multi-stage curriculum lives in coconut.py
        from softcot.methods.coconut import train_coconut

        summary = train_coconut(method, tcfg, train_ex, dev_ex)[-1]
    else:
        summary = train(method, tcfg, train_ex, dev_ex)
    print(json.dumps(summary, indent=2))
    print(f"[softcot] saved to {tcfg.output_dir}")
    return 0


@command("train", "train a method's trainable part (SoftCoT: the projection)")
def add_train(p: argparse.ArgumentParser) -> None:
    add_dataclass_args(p, SoftCoTConfig, skip=("version",), rename=INFER_N)
    add_dataclass_args(p, TrainConfig)


# ---- generate ----------------------------------------------------------------------------
def load_or_build(args: argparse.Namespace, preset: dict):
    from softcot.methods import build_method, load_method

    if args.checkpoint:
        overrides = {k: getattr(args, k, None) for k in ("n_thoughts", "llm", "assistant", "dtype", "task")}
        return load_method(args.checkpoint, args.device, **overrides)
    return build_method(dataclass_from(SoftCoTConfig, args, preset, "model"), args.device)


def run_generate(args: argparse.Namespace) -> int:
    from softcot.data import load_examples
    from softcot.utils import seed_everything

    preset = preset_of(args)
    method = load_or_build(args, preset)
    dec = dataclass_from(DecodingConfig, args, preset, "decoding")
    if args.input_file:
        examples = load_examples(method.cfg.task, args.input_file, limit=args.limit or None)
    elif args.question:
        examples = examples_from_questions(args.question, method.cfg.task)
    else:
        raise SoftCoTError("give --question TEXT (repeatable) or --input-file FILE")
    seed_everything(args.seed)
    out = open(args.output, "w") if args.output else None
    for i in range(0, len(examples), args.batch_size):
        batch = examples[i : i + args.batch_size]
        for ex, comps in zip(batch, method.generate(batch, dec)):
            row = {"id": ex.id, "question": ex.question, "completions": comps}
            print(json.dumps(row, ensure_ascii=False), file=out or sys.stdout, flush=True)
    if out:
        out.close()
        print(f"[softcot] wrote {len(examples)} rows to {args.output}")
    return 0


@command("generate", "generate answers with a trained checkpoint or a training-free method")
def add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="folder written by `softcot train`")
    p.add_argument("--question", action="append", help="a question (repeatable)")
    p.add_argument("--input-file", help="a data file of the task's native format")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=41)
    p.add_argument("--output", help="JSONL output (default: stdout)")
    add_dataclass_args(p, SoftCoTConfig, skip=("version",))
    add_dataclass_args(p, DecodingConfig)


# ---- eval and report ------------------------------------------------------------------------
def run_eval(args: argparse.Namespace) -> int:
    from softcot.data import load_examples
    from softcot.evaluate import EvalConfig, evaluate

    preset = preset_of(args)
    ecfg = dataclass_from(EvalConfig, args, preset, "eval")
    if not ecfg.data_file:
        raise SoftCoTError("--data-file is required (an evaluation file of the task's native format)")
    examples = load_examples(ecfg.task, ecfg.data_file, split=ecfg.split, limit=ecfg.limit or None)
    if args.checkpoint is None:
        args.task = ecfg.task  # the prompt family follows the evaluated task
    method = load_or_build(args, preset)
    if method.cfg.task != ecfg.task:
        method.cfg.task = ecfg.task  # e.g. Date Understanding with the GSM8K projection
    evaluate(method, examples, ecfg, dataclass_from(DecodingConfig, args, preset, "decoding"))
    print(f"[softcot] predictions and metrics in {ecfg.output_dir}")
    return 0


@command("eval", "evaluate a method on a task: predictions.jsonl, metrics.json, a table")
def add_eval(p: argparse.ArgumentParser) -> None:
    from softcot.evaluate import EvalConfig

    p.add_argument("--checkpoint", help="folder written by `softcot train` (else: --method and model flags)")
    add_dataclass_args(p, EvalConfig)
    add_dataclass_args(p, SoftCoTConfig, skip=("version", "task", "n_thoughts"))
    add_dataclass_args(p, DecodingConfig)


def run_report(args: argparse.Namespace) -> int:
    from softcot.report import write_report

    write_report(args.runs, args.out)
    return 0


@command("report", "methods x datasets table (mean +- std) and a PNG chart from several eval runs")
def add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="eval output folders (each with metrics.json)")
    p.add_argument("--out", default="report", help="output folder for report.md, report.json, report.png")


# ---- demo ---------------------------------------------------------------------------------
def run_demo(args: argparse.Namespace) -> int:
    from softcot.demo import DemoConfig, run_demo as demo

    demo(dataclass_from(DemoConfig, args, preset_of(args), "demo"))
    return 0


@command("demo", "the whole pipeline on the embedded mini world (or your models/data): table, report, plots")
def add_demo(p: argparse.ArgumentParser) -> None:
    from softcot.demo import DemoConfig

    add_dataclass_args(p, DemoConfig)


# ---- import the paper's projection --------------------------------------------------------
def run_import_reference(args: argparse.Namespace) -> int:
    from softcot.methods import build_method

    cfg = dataclass_from(SoftCoTConfig, args, preset_of(args), "model", method="softcot", projection="linear")
    method = build_method(cfg, args.device)
    method.load_reference(args.projection_bin)
    method.save(args.output_dir)
    print(f"[softcot] imported {args.projection_bin} -> {args.output_dir}")
    return 0


@command("import-reference", "convert the paper's projection.bin into a softcot checkpoint")
def add_import_reference(p: argparse.ArgumentParser) -> None:
    p.add_argument("--projection-bin", required=True)
    p.add_argument("--output-dir", required=True)
    add_dataclass_args(p, SoftCoTConfig, skip=("version", "method", "projection"))


# ---- entry point -----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from softcot import __version__

    parser = argparse.ArgumentParser(prog="softcot", description="SoftCoT: soft chain-of-thought for frozen LLMs")
    parser.add_argument("--version", action="version", version=f"softcot {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_args, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--preset", help="YAML preset with sections model / train / decoding")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:1 ...")
        add_args(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from softcot.data import DataError

    try:
        return COMMANDS[args.command][2](args)
    except (SoftCoTError, DataError) as e:
        print(f"softcot: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("softcot: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
