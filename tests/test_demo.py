"""`softcot demo --quick` end to end on a quick-built mini world, and a cached rerun that
recomputes nothing."""
import json

import pytest

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
    assert set(summary["softcot_vs"]) == {"zero-shot-cot", "cot-unk", "assist-cot", "prompt-tuning"}
    assert [int(n) for n in summary["n_sweep"]] == [1, 4]
    for png in ("accuracy_by_method.png", "accuracy_vs_n.png", "training_curve.png"):
        assert (out / png).stat().st_size > 2000
    assert "| softcot |" in (out / "demo.md").read_text() and "| softcot |" in text

    # Cached rerun: no training step and no generation happens again.
    from softcot.llm import FrozenLLM

    calls = []
    monkeypatch.setattr(FrozenLLM, "generate", lambda *a, **k: calls.append("generate"))
    monkeypatch.setattr(FrozenLLM, "reply_loss", lambda *a, **k: calls.append("loss"))
    before = (out / "softcot" / "eval" / "predictions.jsonl").read_text()
    assert main(demo_args(quick_world, out)) == 0
    assert calls == [] and (out / "softcot" / "eval" / "predictions.jsonl").read_text() == before
    assert json.loads((out / "demo.json").read_text())["methods"] == summary["methods"]
