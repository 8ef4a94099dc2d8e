"""Scale and faults, through real processes: `accelerate launch` with 2 CPU processes (gloo) gives
the same training and the same predictions as 1 process; SIGKILL at random points (inside a
checkpoint write too), resumed each time, ends bit-identical to an uninterrupted run; an
evaluation killed at one process count resumes at another with nothing lost or duplicated.

Tolerance for 1 vs 2 processes: the gradient of a step is summed in another order (two partial
sums all-reduced instead of one running sum), so weights may differ in the last float32 bits;
rtol 1e-5 / atol 1e-6 is far above that and far below any real difference (one lr step is 1e-2).
"""
import json
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args, procs=1, fault=None, cwd=None, script=None, config_file=None):
    """Run `softcot ARGS` (or a script) in 1 process or under accelerate with `procs` processes."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": str(ROOT)}
    env.pop("SOFTCOT_FAULT", None)
    if fault:
        env["SOFTCOT_FAULT"] = fault
    target = [script] if script else ["-m", "softcot.cli", "-q"]
    if config_file:  # a shipped accelerate config decides the process count
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
               "--main_process_port", str(free_port()), *target, *map(str, args)]
    elif procs == 1:
        cmd = [sys.executable, *target, *map(str, args)]
    else:
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(procs),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", str(free_port()), *target, *map(str, args)]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.tiny import save_pair

    root = tmp_path_factory.mktemp("dist")
    a, l = save_pair(root / "models")
    rows = [{"question": f"Kim has {i} cats and {i + 2} dogs. How many pets?",
             "answer": f"{i} + {i + 2} = {2 * i + 2}\n#### {2 * i + 2}"} for i in range(12)]
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"root": root, "assistant": a, "llm": l, "data": data}


def train_args(w, out, **kw):
    args = ["train", "--assistant", w["assistant"], "--llm", w["llm"], "--train-file", w["data"], "--output-dir", out,
            "--epochs", 2, "--batch-size", 2, "--grad-accum", 2, "--lr", 1e-2, "--train-n-thoughts", 3,
            "--dev-fraction", 0.25, "--save-every", 1, "--device", "cpu"]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", v]
    return args


def eval_args(w, out):
    return ["eval", "--method", "zero-shot-cot", "--llm", w["llm"], "--task", "gsm8k", "--data-file", w["data"],
            "--output-dir", out, "--max-new-tokens", 5, "--do-sample", "--seeds", "41-43", "--batch-size", 2,
            "--device", "cpu"]


def losses(out):
    return [json.loads(x)["loss"] for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]


def steps(out):
    return [json.loads(x)["step"] for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(world):
    """Uninterrupted 1-process training and evaluation."""
    r = world["root"]
    t = launch(train_args(world, r / "t1"))
    assert t.returncode == 0, t.stderr[-2000:]
    e = launch(eval_args(world, r / "e1"))
    assert e.returncode == 0, e.stderr[-2000:]
    return {"train": r / "t1", "eval": r / "e1"}


def test_two_processes_train_like_one(world, reference):
    out = world["root"] / "t2"
    p = launch(train_args(world, out), procs=2)
    assert p.returncode == 0, p.stderr[-2000:]
    assert losses(out) == pytest.approx(losses(reference["train"]), rel=1e-5)
    a = load_file(reference["train"] / "projection.safetensors")
    b = load_file(out / "projection.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert json.loads((out / "train_summary.json").read_text())["processes"] == 2


def test_two_processes_evaluate_like_one(world, reference):
    out = world["root"] / "e2"
    p = launch(eval_args(world, out), config_file=ROOT / "softcot" / "configs" / "accelerate" / "cpu-2proc.yaml")
    assert p.returncode == 0, p.stderr[-2000:]
    one = (reference["eval"] / "predictions.jsonl").read_text()
    two = (out / "predictions.jsonl").read_text()
    assert two == one and len(one.splitlines()) == 12 * 3  # 12 examples x 3 seeds, none missing or twice
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (reference["eval"], out))
    assert m1["per_seed"] == m2["per_seed"] and m2["processes"] == 2
    assert not list(out.glob("predictions.part*"))


def test_sigkill_during_training_resumes_bit_identical(world, reference):
    """Kill at random steps and inside checkpoint writes, several times; each rerun resumes."""
    out = world["root"] / "tk"
    rng = random.Random(7)
    kills = 0
    for fault in ["state-write:2", f"train-step:{rng.randint(1, 3)}", f"state-write:{rng.randint(1, 2)}",
                  f"train-step:{rng.randint(1, 2)}"]:
        p = launch(train_args(world, out), fault=fault)
        if p.returncode == -9:
            kills += 1
        else:  # the run finished before the fault point was reached
            assert p.returncode == 0, p.stderr[-2000:]
    assert kills >= 3
    p = launch(train_args(world, out))
    assert p.returncode == 0, p.stderr[-2000:]
    a = load_file(reference["train"] / "projection.safetensors")
    b = load_file(out / "projection.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-identical
    assert steps(out) == steps(reference["train"])  # every step logged once
    assert losses(out) == losses(reference["train"])


def test_sigkill_under_two_processes_then_resume_on_one(world, reference):
    out = world["root"] / "tk2"
    p = launch(train_args(world, out), procs=2, fault="train-step:3@1")
    assert p.returncode != 0
    p = launch(train_args(world, out), procs=2, fault="state-write:2@0")
    assert p.returncode != 0
    p = launch(train_args(world, out))
    assert p.returncode == 0, p.stderr[-2000:]
    a = load_file(reference["train"] / "projection.safetensors")
    b = load_file(out / "projection.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert steps(out) == steps(reference["train"])


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_killed_evaluation_resumes_at_another_process_count(world, reference, first, then):
    out = world["root"] / f"ek{first}{then}"
    p = launch(eval_args(world, out), procs=first, fault="eval-batch:3" + ("@1" if first == 2 else ""))
    assert p.returncode != 0
    written = [json.loads(x) for f in out.glob("predictions*.jsonl") for x in f.read_text().splitlines() if x.strip()]
    assert written  # some batches were finished before the kill
    p = launch(eval_args(world, out), procs=then)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (out / "predictions.jsonl").read_text() == (reference["eval"] / "predictions.jsonl").read_text()
    assert not list(out.glob("predictions.part*"))


def test_every_method_under_two_processes(world):
    """Every method evaluates, every trainable one trains, under 2 processes as under 1."""
    script = str(ROOT / "tests" / "dist_script.py")
    models = Path(world["assistant"]).parent
    res = {}
    for procs in (1, 2):
        out = world["root"] / f"all{procs}"
        p = launch([models, world["data"], out], procs=procs, script=script)
        assert p.returncode == 0, p.stderr[-3000:]
        res[procs] = json.loads((out / "result.json").read_text())
    from softcot.methods import METHOD_NAMES

    assert set(res[2]) == set(res[1]) == set(METHOD_NAMES)
    for name, one in res[1].items():
        two = res[2][name]
        assert two["n_rows"] == one["n_rows"] > 0, name
        if "final_loss" in one:
            assert two["final_loss"] == pytest.approx(one["final_loss"], rel=1e-5), name
            for k, v in one["weights"].items():
                assert two["weights"][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (name, k)
        else:  # training-free: the very same predictions
            assert two["predictions"] == one["predictions"], name


def test_device_map_sharding_path_evaluates_like_one_device(world, reference):
    """--device-map auto (accelerate big-model loading; on this CPU-only machine every layer lands
    on the CPU) runs the same evaluation as --device cpu."""
    out = world["root"] / "emap"
    args = [a if a != "cpu" else "auto" for a in eval_args(world, out)]
    args = args[: args.index("--device")] + ["--device-map", "auto"]
    p = launch(args)
    assert p.returncode == 0, p.stderr[-2000:]
    assert (out / "predictions.jsonl").read_text() == (reference["eval"] / "predictions.jsonl").read_text()
    bad = launch(eval_args(world, world["root"] / "emap2") + ["--device-map", "auto"])
    assert bad.returncode == 2 and "drop --device cpu" in bad.stderr
