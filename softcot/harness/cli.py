"""`softcot lm-eval ...`: lm-eval's own command line with the `softcot` model registered.

    softcot lm-eval run --model softcot --model_args checkpoint=runs/x --tasks gsm8k_cot_zeroshot
    softcot lm-eval ls tasks                       # any lm-eval subcommand; no subcommand means `run`
                                                   # (softcot.cli inserts it: `softcot -q lm-eval --model ...`)
    accelerate launch -m softcot.cli lm-eval run ...   # requests shared over the processes

Before lm-eval takes over, `--model softcot`'s model_args are checked (names, values, the
checkpoint or model folders) without loading a model, and argparse errors come back as one line.
--output_path is held for the run (softcot.lock): a second run into it is refused at once.
lm-eval then resolves --tasks (an unknown task fails here, still before any model loads) and runs.
"""
from __future__ import annotations

import argparse

from softcot.errors import ConfigError


def _one_line(parser: argparse.ArgumentParser):
    def error(message: str):
        raise ConfigError(f"{parser.prog}: {' '.join(message.split())}")
    return error


def check_softcot_run(args: argparse.Namespace) -> None:
    """The softcot model's arguments, checked before lm-eval reads tasks or loads anything."""
    from softcot.harness.args import model_config, parse_model_args

    model_args = dict(args.model_args or {})
    bs = getattr(args, "batch_size", None)
    if bs is not None and not str(bs).isdigit() and "batch_size" not in model_args:
        raise ConfigError(f"--batch_size {bs}: expected a positive integer (the softcot model has no automatic "
                          "batch size)")
    if args.device is None and "device" not in model_args:
        args.device = "auto"  # lm-eval's default is cuda:0; softcot picks this process's device
    if "device" not in model_args:
        model_args["device"] = args.device
    model_config(parse_model_args(model_args))


def run(argv: list[str]) -> int:
    from softcot.harness import MODEL_NAME, register

    register()  # one clear line when lm-eval is not installed
    from lm_eval._cli import HarnessCLI

    cli = HarnessCLI()
    commands = cli._subparsers.choices  # lm-eval's own subcommands (run, ls, validate)
    for p in [cli._parser, *commands.values()]:
        p.error = _one_line(p)
    if not argv or argv[0] in ("-h", "--help"):
        cli._parser.print_help()
        return 0
    args = cli._parser.parse_args(argv)
    if args.command == "run" and args.model == MODEL_NAME:
        check_softcot_run(args)
    with output_lock_of(args):
        _run(args)
    return 0


def output_lock_of(args: argparse.Namespace):
    """lm-eval's --output_path (a folder, or a .json file whose folder is used), held for the run
    (softcot.lock); nothing to hold without one."""
    import contextlib
    from pathlib import Path

    from softcot.checks import check_output_dir
    from softcot.lock import output_lock

    if getattr(args, "command", None) != "run" or not getattr(args, "output_path", None):
        return contextlib.nullcontext()
    out = Path(args.output_path)
    folder = out.parent if out.suffix == ".json" else out
    check_output_dir(folder, "--output_path")
    return output_lock(folder, "--output_path")


def _run(args: argparse.Namespace) -> None:
    try:
        args.func(args)
    except ValueError as e:
        msg = str(e)
        if msg.startswith("Tasks not found:"):  # lm-eval's own check, before the model loads
            missing = msg.split(":", 1)[1].strip()
            raise ConfigError(f"--tasks {missing}: no such lm-eval task or group; `softcot lm-eval ls tasks` lists "
                              "them (--include_path DIR adds your own task YAMLs)") from None
        raise
