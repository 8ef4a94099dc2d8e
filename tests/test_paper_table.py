"""The five-family world's build and a CI-size paper table: every method of the paper's Table 2 on
every task family and both LLM families, read through softcot's own loaders and scorer."""
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from softcot.data import load_examples

ROOT = Path(__file__).resolve().parents[1]


def paper_table():
    spec = importlib.util.spec_from_file_location("paper_table", ROOT / "benchmarks" / "paper_table.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["paper_table"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from softcot.miniworld.build_families import build_families

    out = tmp_path_factory.mktemp("world5")
    build_families(out, seed=0, quick=True, log=lambda s: None)
    return out


def test_build_writes_both_llm_families_and_a_manifest(world):
    m = json.loads((world / "MANIFEST.json").read_text())
    assert set(m["models"]) == {"llama", "qwen", "assistant"}
    assert m["models"]["llama"]["architecture"] == "LlamaForCausalLM"
    assert m["models"]["qwen"]["architecture"] == "Qwen2ForCausalLM"
    # the two LLM families read different tokenizers; the Qwen one shares the assistant's
    llama_tok = json.loads((world / "llama" / "tokenizer.json").read_text())["model"]["vocab"]
    qwen_tok = json.loads((world / "qwen" / "tokenizer.json").read_text())["model"]["vocab"]
    asst_tok = json.loads((world / "assistant" / "tokenizer.json").read_text())["model"]["vocab"]
    assert llama_tok != qwen_tok and qwen_tok == asst_tok
    for fam, acc in m["test_accuracy"].items():
        assert {"assistant_written", "assistant_slots", "llama", "qwen"} <= set(acc), fam
        assert {"no_hint", "gold_hint", "assistant_hint"} <= set(acc["llama"])
    for fam, info in m["families"].items():
        for split, name in info["files"].items():
            assert load_examples(fam, world / info["folder"] / name), (fam, split)


def test_quick_paper_table_covers_every_cell(world, tmp_path):
    pt = paper_table()
    res = pt.main(["--world", str(world), "--quick", "--out", str(tmp_path / "pt"), "--limit-test", "2",
                   "--max-new-tokens", "8"])
    keys = [k for k, _, _ in pt.ROWS]
    for llm in pt.LLMS:
        assert list(res["table"][llm]) == keys
        for key in keys:
            assert set(res["table"][llm][key]) == set(pt.FAMILIES), (llm, key)
            for fam in pt.FAMILIES:
                cell = res["table"][llm][key][fam]
                assert 0.0 <= cell["mean"] <= 100.0
                assert key == "zero-shot-cot" or "vs_zero_shot" in cell
    # the training-free row is a checkpoint of the bridge with no training step
    summary = json.loads((tmp_path / "pt" / "llama" / "gsm8k" / "bridge" / "run" / "ckpt" / "train_summary.json").read_text())
    assert summary["steps"] == 0 and summary["projection_init"] == "vocab"
    # LoRA / Coconut got their own LLM copy: the shared LLMs every other method reads have no adapters
    assert res["shared_llms_plain"] == {"llama": True, "qwen": True}
    md = (tmp_path / "pt" / "paper_table.md").read_text()
    assert "## LLM family: llama" in md and "## LLM family: qwen" in md and "| Coconut |" in md
    assert (tmp_path / "pt" / "paper_table.png").stat().st_size > 1000
    assert (tmp_path / "pt" / "paper_table_flops.png").stat().st_size > 1000
    assert set(res["paired"]["qwen"]["aqua"]) == {"softcot - assist-cot", "softcot - bridge", "softcot-pp - softcot",
                                                  "bridge - assist-cot"}
    assert "Paired over questions (llama, date): softcot - assist-cot" in md
    assert "accuracy-vs-FLOPs frontier (llama" in md


def test_frontier_keeps_only_undominated_methods():
    pt = paper_table()
    cell = lambda gf, acc: {"gsm8k": {"gflops_per_q": gf, "mean": acc}}  # noqa: E731
    block = {"zero-shot-cot": cell(1.0, 20.0), "cot-unk": cell(1.2, 19.0), "softcot": cell(1.3, 40.0),
             "sc": cell(2.6, 21.0), "lora": cell(1.0, 20.0), "assist-cot": cell(1.3, 38.0)}
    # cot-unk costs more than zero-shot CoT for less; sc and assist-cot lose to SoftCoT at no more cost;
    # two methods at the same point are both kept
    assert sorted(pt.frontier(block, "gsm8k")) == ["lora", "softcot", "zero-shot-cot"]
    assert pt.frontier(block, "aqua") == []


def test_one_process_per_llm_family_then_the_joint_report(world, tmp_path, capfd):
    """--jobs 2: each LLM family's cells run in a child process of their own; the parent then reads
    every finished run back (nothing is redone) and writes the joint table."""
    pt = paper_table()
    out = tmp_path / "par"
    res = pt.main(["--world", str(world), "--quick", "--jobs", "2", "--out", str(out), "--families", "gsm8k",
                   "--methods", "zero-shot-cot,softcot", "--limit-test", "2", "--max-new-tokens", "8"])
    assert set(res["table"]) == {"llama", "qwen"}
    err = capfd.readouterr()
    assert "[paper_table] llama:" in err.out and "[paper_table] qwen:" in err.out  # both children started
    for llm in ("llama", "qwen"):
        ckpt = out / llm / "gsm8k" / "softcot" / "train-seed-42" / "ckpt"
        # trained once, by the child: the parent read the run back (its recorded seconds are the child's)
        assert json.loads((ckpt / "train_seconds.json").read_text())["seconds"] == res["table"][llm]["softcot"]["gsm8k"]["train_s"]
    assert "## LLM family: qwen" in (out / "paper_table.md").read_text()


def test_build_is_deterministic_from_its_seed(world, tmp_path):
    from softcot.miniworld.build_families import build_families

    build_families(tmp_path / "again", seed=0, quick=True, log=lambda s: None)
    for rel in ("llama/model.safetensors", "qwen/model.safetensors", "assistant/model.safetensors",
                "llama/tokenizer.json", "data/aqua/test.json", "data/date/train.json"):
        assert (tmp_path / "again" / rel).read_bytes() == (world / rel).read_bytes(), rel


def test_the_shipped_world_loads_through_the_real_loaders():
    """The five-family world in the package: every family's splits through softcot's loader for
    its benchmark, and the MANIFEST's measurements for every family and model."""
    from softcot.miniworld import FAMILIES_DIR
    from softcot.miniworld.families import FAMILIES, FILE_EXT

    if not (FAMILIES_DIR / "MANIFEST.json").is_file():
        pytest.skip("no shipped five-family world")
    m = json.loads((FAMILIES_DIR / "MANIFEST.json").read_text())
    assert set(m["test_accuracy"]) == set(FAMILIES) and not m["quick"]
    for fam in FAMILIES:
        sizes = {s: len(load_examples(fam, FAMILIES_DIR / "data" / fam / f"{s}.{FILE_EXT[fam]}"))
                 for s in ("train", "dev", "test")}
        assert sizes == {"train": m["config"]["n_train"], "dev": m["config"]["n_dev"], "test": m["config"]["n_test"]}
    for name in ("llama", "qwen", "assistant"):
        assert (FAMILIES_DIR / name / "model.safetensors").is_file() and (FAMILIES_DIR / name / "config.json").is_file()
