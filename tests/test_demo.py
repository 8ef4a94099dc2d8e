"""`softcot demo --quick` end to end on a quick-built mini world, and a cached rerun that
recomputes nothing."""
import json

import pytest
import torch

from softcot.cli import main


@pytest.fixture(scope="module")
def quick_world(tmp_path_factory):
    from softcot.miniworld.build import build_miniworld

    return build_miniworld(tmp_path_factory.mktemp("world"), quick=True, log=lambda *a: None)


def demo_args(world, out):
    return ["demo", "--quick", "--llm", str(world["llm"]), "--assistant", str(world["assistant"]),
            "--train-file", str(world["train"]), "--dev-file", str(world["dev"]), "--test-file", str(world["test"]),
            "--output-dir", str(out), "--eval-batch-size", "8", "--max-new-tokens", "24"]


def test_quick_demo_writes_report_and_plots_then_reruns_from_cache(quick_world, tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    assert main(demo_args(quick_world, out)) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "demo.json").read_text())
    assert set(summary["methods"]) == {"zero-shot-cot", "cot-unk", "assist-cot", "prompt-tuning", "softcot"}
    assert all(len(m["per_seed"]) == 2 for m in summary["methods"].values())
    # --quick trains one training seed (the first of --train-seeds) and says so in the report
    assert summary["train_seeds"] == [42]
    assert list(summary["methods"]["softcot"]["per_train_seed"]) == ["42"]
    assert summary["methods"]["zero-shot-cot"]["per_train_seed"] == {}
    assert "n/a (1 seed)" in text and "n/a (not trained)" in text
    assert set(summary["softcot_vs"]) == {"zero-shot-cot", "cot-unk", "assist-cot", "prompt-tuning"}
    assert [int(n) for n in summary["n_sweep"]] == [1, 4]
    for png in ("accuracy_by_method.png", "accuracy_vs_n.png", "training_curve.png"):
        assert (out / png).stat().st_size > 2000
    assert "| softcot |" in (out / "demo.md").read_text() and "| softcot |" in text
    # the first comparison is printed before the other methods run; the table keeps --methods order
    assert text.index("first look: zero-shot CoT") < text.index("| zero-shot-cot |")
    assert [r.split("|")[1].strip() for r in text.splitlines() if r.startswith("| ") and "---" not in r][1:] == \
        ["zero-shot-cot", "cot-unk", "assist-cot", "prompt-tuning", "softcot"]
    # compute beside accuracy: every method's counted FLOPs per question; SoftCoT's include the assistant
    cost = {n: m["cost_per_question"] for n, m in summary["methods"].items()}
    assert all(c and c["flops"] > 0 and c["ms"] > 0 for c in cost.values()) and "GFLOPs / ms per question" in text
    assert cost["softcot"]["flops"] > cost["zero-shot-cot"]["flops"]
    parts = [p["part"] for p in summary["timings"]]
    assert parts[:4] == ["setup: load the frozen LMs", "evaluate zero-shot-cot", "train softcot, training seed 42",
                         "evaluate softcot, training seed 42"]
    assert 0 < summary["first_look_s"] <= summary["wall_time_s"] and "plots:" in text

    # Cached rerun: no training step and no generation happens again.
    from softcot.llm import FrozenLLM

    calls = []
    monkeypatch.setattr(FrozenLLM, "generate", lambda *a, **k: calls.append("generate"))
    monkeypatch.setattr(FrozenLLM, "reply_loss", lambda *a, **k: calls.append("loss"))
    before = (out / "softcot" / "train-seed-42" / "eval" / "predictions.jsonl").read_text()
    assert main(demo_args(quick_world, out)) == 0
    assert calls == [] and (out / "softcot" / "train-seed-42" / "eval" / "predictions.jsonl").read_text() == before
    assert json.loads((out / "demo.json").read_text())["methods"] == summary["methods"]


def test_demo_reports_spread_over_training_and_sampling_seeds(quick_world, tmp_path, capsys):
    """Two training seeds: each trained method has one run per training seed; the table gives the
    std over training seeds and over sampling seeds separately, and the bootstrap pools all runs."""
    out = tmp_path / "demo2"
    args = demo_args(quick_world, out) + ["--methods", "zero-shot-cot,softcot", "--n-sweep", "4"]
    args[args.index("--quick")] = "--limit-train=64"
    args += ["--limit-test", "16", "--limit-dev", "16", "--seeds", "41-42", "--train-seeds", "7,8"]
    assert main(args) == 0
    summary = json.loads((out / "demo.json").read_text())
    soft = summary["methods"]["softcot"]
    assert list(soft["per_train_seed"]) == ["7", "8"] and summary["train_seeds"] == [7, 8]
    assert soft["std_over_training_seeds"] is not None and soft["std_over_sampling_seeds"] >= 0
    runs = [json.loads((out / "softcot" / f"train-seed-{t}" / "eval" / "metrics.json").read_text()) for t in (7, 8)]
    assert soft["accuracy_mean"] == pytest.approx(sum(r["accuracy_mean"] for r in runs) / 2)
    for t in (7, 8):  # each run trained with its own seed
        assert json.loads((out / "softcot" / f"train-seed-{t}" / "ckpt" / "train_args.json").read_text())["seed"] == t
    assert summary["softcot_vs"]["zero-shot-cot"]["n"] == runs[0]["n_examples"]  # paired over the test questions


def test_job_order_puts_the_first_comparison_first():
    from softcot.demo import job_order

    trains = {"zero-shot-cot": False, "cot-unk": False, "prompt-tuning": True, "softcot": True}
    assert job_order(list(trains), trains, [1, 2]) == [
        ("zero-shot-cot", None), ("softcot", 1), ("cot-unk", None), ("prompt-tuning", 1), ("prompt-tuning", 2),
        ("softcot", 2)]
    assert job_order(["cot-unk"], {"cot-unk": False}, [1]) == [("cot-unk", None)]


def test_training_seeds_sharing_the_assistants_thoughts_train_what_they_train_alone(quick_world, tmp_path):
    """The demo lends one thought cache to a method's training seeds: the second seed, reading the
    first seed's cached thoughts, ends with the very projection it trains with a cache of its own."""
    from safetensors.torch import load_file

    from softcot.assistant import ThoughtCache
    from softcot.config import ModelConfig, TrainConfig
    from softcot.data import load_examples
    from softcot.methods import build_method
    from softcot.train import train
    from softcot.utils import seed_everything

    ex = load_examples("miniworld", quick_world["train"], limit=32)

    def run(seed, out, cache=None):
        seed_everything(seed)
        m = build_method(ModelConfig(method="softcot", llm=str(quick_world["llm"]), assistant=str(quick_world["assistant"]),
                                     task="miniworld", n_thoughts=2))
        train(m, TrainConfig(output_dir=str(out), train_n_thoughts=2, max_steps=2, batch_size=8, seed=seed), ex[:24], ex[24:],
              thought_cache=cache)
        return m

    first = run(1, tmp_path / "a")
    shared = ThoughtCache(first.assistant)
    run(1, tmp_path / "a2", shared)  # fills the shared cache
    assert len(shared.store) == 32
    run(2, tmp_path / "b-shared", shared)
    run(2, tmp_path / "b-alone")
    a, b = load_file(tmp_path / "b-shared" / "projection.safetensors"), load_file(tmp_path / "b-alone" / "projection.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
