"""End to end through the `softcot` command: train -> generate -> eval (with resume) -> report,
and the one-line errors for bad input."""
import json

import pytest

from softcot.cli import main


def write_gsm8k(path, n=6):
    rows = [{"question": f"Lia has {i} pens and buys {i + 3}. How many pens now?",
             "answer": f"She has {i} + {i + 3} = <<{i}+{i + 3}={2 * i + 3}>>{2 * i + 3} pens.\n#### {2 * i + 3}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def data(tmp_path):
    return write_gsm8k(tmp_path / "train.jsonl")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def error_line(err):
    """The CLI's error: the last stderr line (model-loading progress bars may come before it)."""
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1].split("\r")[-1]
    assert line.startswith("softcot: error: ")
    return line


def test_train_generate_eval_report(tiny_pair, data, tmp_path, capsys):
    a, l = tiny_pair
    ck = tmp_path / "ck"
    code, out, err = run(capsys, "train", "--assistant", a, "--llm", l, "--task", "gsm8k", "--train-file", data,
                         "--output-dir", ck, "--max-steps", 3, "--batch-size", 2, "--n-thoughts", 4, "--lr", 1e-3,
                         "--device", "cpu")
    assert code == 0, err
    assert (ck / "projection.safetensors").is_file() and '"trainable": 801' in out  # 24*32 + 32 + the match gain
    code, out, err = run(capsys, "generate", "--checkpoint", ck, "--question", "What is 2 + 3?", "--question", "7 - 1?",
                         "--max-new-tokens", 5, "--device", "cpu")
    assert code == 0, err
    rows = [json.loads(x) for x in out.strip().splitlines()]
    assert [r["id"] for r in rows] == ["q0", "q1"] and all(len(r["completions"]) == 1 for r in rows)

    ev = tmp_path / "ev"
    args = ["eval", "--checkpoint", ck, "--task", "gsm8k", "--data-file", data, "--output-dir", ev,
            "--max-new-tokens", 4, "--do-sample", "--seeds", "41-42", "--batch-size", 4, "--device", "cpu"]
    code, out, err = run(capsys, *args)
    assert code == 0, err
    preds = (ev / "predictions.jsonl").read_text().splitlines()
    assert len(preds) == 12  # 6 examples x 2 seeds
    m = json.loads((ev / "metrics.json").read_text())
    assert set(m["per_seed"]) == {"41", "42"} and "accuracy_std" in m and "mean +- std" in out
    # Interrupt: drop the last batch and tear a line, then rerun: only that batch is redone.
    kept = preds[:10]
    (ev / "predictions.jsonl").write_text("\n".join(kept) + '\n{"seed": 42, "ba')
    code, out, err = run(capsys, *args)
    assert code == 0, err
    again = (ev / "predictions.jsonl").read_text().splitlines()
    assert again[:8] == preds[:8] and len(again) == 12  # batch (42, 0) kept, batch (42, 1) redone
    assert [json.loads(x)["completion"] for x in again] == [json.loads(x)["completion"] for x in preds]
    # Another configuration in the same folder is refused, nothing overwritten.
    code, out, err = run(capsys, *args[:-2], "--temperature", "0.5", "--device", "cpu")
    assert code == 2 and "another configuration" in error_line(err) and "temperature" in err
    assert (ev / "predictions.jsonl").read_text().splitlines() == again
    # A run written before a setting existed is read as having that setting's old value (here the
    # attention kernel and the thought block, whose old values are today's defaults): it resumes
    # and nothing is redone.
    runcfg = json.loads((ev / "run_config.json").read_text())
    del runcfg["method"]["attn_implementation"], runcfg["method"]["thought_block"]
    (ev / "run_config.json").write_text(json.dumps(runcfg))
    code, out, err = run(capsys, *args)
    assert code == 0, err
    assert (ev / "predictions.jsonl").read_text().splitlines() == again
    # ...and a different old value makes it another run, named in one line
    code, out, err = run(capsys, *args, "--thought-block", "slots")
    assert code == 2 and "method.thought_block: 'preamble' -> 'slots'" in error_line(err)

    code, out, err = run(capsys, "eval", "--method", "zero-shot-cot", "--llm", l, "--task", "gsm8k", "--data-file", data,
                         "--output-dir", tmp_path / "zs", "--max-new-tokens", 4, "--device", "cpu")
    assert code == 0, err
    code, out, err = run(capsys, "report", ev, tmp_path / "zs", "--out", tmp_path / "rep")
    assert code == 0, err
    assert "| softcot |" in out and "| zero-shot-cot |" in out
    assert (tmp_path / "rep" / "report.png").stat().st_size > 1000


@pytest.mark.parametrize("extra, message", [
    (["--llm", "/no/such/model"], "model folder '/no/such/model' not found"),
    (["--n-thoughts", "0"], "n_thoughts must be >= 1"),
    (["--llm-placeholder", "<nope>"], "not a single token of the llm tokenizer"),
])
def test_bad_arguments_give_one_line(tiny_pair, data, tmp_path, capsys, extra, message):
    a, l = tiny_pair
    base = ["train", "--assistant", a, "--llm", l, "--train-file", data, "--output-dir", tmp_path / "o",
            "--max-steps", 1, "--device", "cpu"]
    code, out, err = run(capsys, *base, *extra)
    assert code == 2
    assert message in error_line(err)


def test_bad_training_files(tiny_pair, tmp_path, capsys):
    a, l = tiny_pair
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "q", "answer": "#### 1"}\n{"question": oops\n')
    for f, msg in ((empty, "empty"), (broken, "line 2")):
        code, out, err = run(capsys, "train", "--assistant", a, "--llm", l, "--train-file", f, "--output-dir",
                             tmp_path / "o", "--device", "cpu")
        assert code == 2 and msg in error_line(err) and str(f) in error_line(err)
        assert not (tmp_path / "o").exists()  # nothing written before the input was checked


def test_checkpoint_mismatch_keeps_files(tiny_pair, data, tmp_path, capsys):
    from safetensors.torch import save_file
    import torch

    a, l = tiny_pair
    ck = tmp_path / "ck"
    assert main(["train", "--assistant", a, "--llm", l, "--train-file", str(data), "--output-dir", str(ck),
                 "--max-steps", "1", "--device", "cpu"]) == 0
    from safetensors.torch import load_file

    sd = load_file(ck / "projection.safetensors")
    save_file({**sd, "net.weight": torch.zeros(32, 7)}, ck / "projection.safetensors")
    before = (ck / "projection.safetensors").read_bytes()
    capsys.readouterr()
    code, out, err = run(capsys, "generate", "--checkpoint", ck, "--question", "hi", "--device", "cpu")
    assert code == 2 and "expected (32, 24)" in error_line(err)
    assert (ck / "projection.safetensors").read_bytes() == before


@pytest.mark.parametrize("argv,expected", [
    (["lm-eval", "--model", "softcot"], ["run", "--model", "softcot"]),  # lm-eval's legacy form: no subcommand
    (["-q", "lm-eval", "--model", "softcot"], ["run", "--model", "softcot"]),  # after softcot's global flags
    (["--quiet", "lm-eval", "run", "--model", "softcot"], ["run", "--model", "softcot"]),
    (["lm-eval", "ls", "tasks"], ["ls", "tasks"]),
])
def test_lm_eval_command_line_reaches_lm_eval(argv, expected, monkeypatch):
    import softcot.harness.cli

    seen = []
    monkeypatch.setattr(softcot.harness.cli, "run", lambda a: seen.append(a) or 0)
    assert main(argv) == 0 and seen == [expected]


def test_init_only_writes_the_bridge_without_training(tiny_pair, data, tmp_path, capsys):
    """Training-free SoftCoT: `--init-only` saves the vocabulary bridge as a checkpoint (no step),
    which equals the start of a trained run from the same data, and evaluates like any checkpoint."""
    from safetensors.torch import load_file

    a, l = tiny_pair
    common = ["train", "--assistant", a, "--llm", l, "--task", "gsm8k", "--train-file", data, "--batch-size", 2,
              "--n-thoughts", 4, "--train-n-thoughts", 4, "--lr", 1e-3, "--device", "cpu"]
    code, out, err = run(capsys, *common, "--output-dir", tmp_path / "bridge", "--init-only")
    assert code == 0, err
    summary = json.loads((tmp_path / "bridge" / "train_summary.json").read_text())
    assert summary["steps"] == 0 and summary["init_only"] and summary["best_dev_loss"] is not None
    assert summary["projection_init"] == "vocab" and "bridge_r2" in summary  # the bridge, not PyTorch's init
    assert not (tmp_path / "bridge" / "metrics.jsonl").exists()  # no training step was logged
    bridge = load_file(tmp_path / "bridge" / "projection.safetensors")
    # one step at a tiny lr from the same start: close to the bridge, not equal (a step was taken)
    code, out, err = run(capsys, *common[:-4], "--lr", 1e-9, "--device", "cpu", "--output-dir", tmp_path / "one",
                         "--max-steps", 1)
    assert code == 0, err
    stepped = load_file(tmp_path / "one" / "projection.safetensors")
    assert bridge.keys() == stepped.keys()
    for k in bridge:
        assert (bridge[k] - stepped[k]).abs().max() < 1e-4, k
    code, out, err = run(capsys, "eval", "--checkpoint", tmp_path / "bridge", "--task", "gsm8k", "--data-file", data,
                         "--output-dir", tmp_path / "ev", "--max-new-tokens", 4, "--device", "cpu")
    assert code == 0, err
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["n_examples"] == 6
