"""Bad input costs seconds, not minutes: every case below ends with exactly one stderr line
`softcot: error: ...` naming the file / line / flag, exit code 2, no traceback, nothing printed
on stdout, no model loaded (the loader is replaced by one that fails the test), and every file
that existed before (checkpoint, eval folder, data) byte-identical afterwards, with nothing new
written. Then property-based fuzzing (hypothesis) of data files, presets, config values, flags
and checkpoint folders: only the package's one-line errors, never another exception.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import struct
import sys
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softcot.cli import main

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                       HealthCheck.too_slow])


# ---- fixtures ----------------------------------------------------------------------------------
GSM = [{"question": f"Lia has {i} pens and buys 3. How many pens now?", "answer": f"{i} + 3 = {i + 3}\n#### {i + 3}"}
       for i in range(4)]


def jsonl(rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


class Payload:
    """A pickle that creates `marker` when unpickled (open(marker, "w")): the test asserts it never is."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def ckpt_src(tiny_pair, tmp_path_factory):
    """A complete SoftCoT checkpoint folder of the tiny pair (untrained projection) and its method."""
    from softcot.config import ModelConfig
    from softcot.methods import build_method

    a, l = tiny_pair
    method = build_method(ModelConfig(method="softcot", assistant=a, llm=l), "cpu")
    folder = tmp_path_factory.mktemp("ckpt") / "ck"
    method.save(folder)
    return folder, method


class World:
    """A scratch folder with valid inputs (data, a checkpoint, an earlier eval folder) that a case
    breaks one at a time, and the argument lists of each command."""

    def __init__(self, tmp: Path, pair: tuple[str, str], ckpt: Path) -> None:
        self.tmp, (self.a, self.l) = tmp, pair
        self.data = self.file("train.jsonl", jsonl(GSM))
        self.ck = tmp / "ck"
        shutil.copytree(ckpt, self.ck)
        self.ev = tmp / "ev"  # an earlier evaluation that a bad rerun must leave alone
        self.ev.mkdir()
        (self.ev / "run_config.json").write_text(json.dumps({"method": {}, "eval": {}, "decoding": {}}))
        (self.ev / "predictions.jsonl").write_text(jsonl([{"seed": 41, "batch": 0, "id": "q0", "pred": "3"}]))
        (self.ev / "metrics.json").write_text(json.dumps({"method": "softcot", "task": "gsm8k", "accuracy_mean": 50.0,
                                                          "accuracy_std": 0.0, "per_seed": {}, "seeds": [41]}))
        self.marker = tmp / "PWNED"

    def file(self, name: str, content: str | bytes) -> str:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(p)

    def dir(self, name: str) -> str:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        return str(self.tmp / name)

    def model_copy(self, name: str, which: str = "llm") -> Path:
        dst = self.tmp / name
        shutil.copytree(self.l if which == "llm" else self.a, dst)
        return dst

    def edit_config(self, **changes) -> None:
        cfg = json.loads((self.ck / "softcot_config.json").read_text())
        (self.ck / "softcot_config.json").write_text(json.dumps({**cfg, **changes}))

    def preset(self, text: str | bytes, name: str = "preset.yaml") -> str:
        return self.file(name, text)

    # the commands, valid as given; a case appends the one bad part (argparse: the last flag wins)
    def train(self, *extra) -> list:
        return ["train", "--assistant", self.a, "--llm", self.l, "--task", "gsm8k", "--train-file", self.data,
                "--output-dir", self.tmp / "out", "--max-steps", 1, "--device", "cpu", *extra]

    def eval(self, *extra) -> list:
        return ["eval", "--checkpoint", self.ck, "--task", "gsm8k", "--data-file", self.data, "--output-dir", self.ev,
                "--max-new-tokens", 4, "--device", "cpu", *extra]

    def eval_zs(self, *extra) -> list:
        return ["eval", "--method", "zero-shot-cot", "--llm", self.l, "--task", "gsm8k", "--data-file", self.data,
                "--output-dir", self.ev, "--max-new-tokens", 4, "--device", "cpu", *extra]

    def gen(self, *extra) -> list:
        return ["generate", "--checkpoint", self.ck, "--question", "What is 2 + 3?", "--max-new-tokens", 4,
                "--device", "cpu", *extra]

    def demo(self, *extra) -> list:
        return ["demo", "--quick", "--output-dir", self.tmp / "demo", *extra]

    def imp(self, *extra) -> list:
        ref = self.tmp / "projection.bin"
        if not ref.exists():
            torch.save({"weight": torch.zeros(32, 24), "bias": torch.zeros(32)}, ref)
        return ["import-reference", "--projection-bin", ref, "--assistant", self.a, "--llm", self.l,
                "--output-dir", self.tmp / "imported", "--device", "cpu", *extra]

    # broken parts
    def ck_weights(self, content: bytes) -> None:
        (self.ck / "projection.safetensors").write_bytes(content)

    def ck_tensors(self, **tensors) -> None:
        from safetensors.torch import load_file, save_file

        sd = load_file(self.ck / "projection.safetensors")
        save_file({**sd, **tensors}, self.ck / "projection.safetensors")

    def out_state(self, pointer: str | bytes | None = None, state: dict | None = None) -> None:
        out = self.tmp / "out"
        out.mkdir(exist_ok=True)
        if pointer is not None:
            (out / "train_state.json").write_bytes(pointer.encode() if isinstance(pointer, str) else pointer)
        if state is not None:
            (out / "state-00000001").mkdir()
            (out / "state-00000001" / "state.json").write_text(json.dumps(state))


def weights_of(w: World) -> bytes:
    return (w.ck / "projection.safetensors").read_bytes()


def metrics_dir(w: World, content: str | bytes) -> str:
    w.file("runs/r1/metrics.json", content)
    return str(w.tmp / "runs" / "r1")


POINTER = {"format": "softcot-train-state", "version": 1, "dir": "state-00000001"}
XML_OK = ("<Machine-Reading-Corpus-File><ProblemSet><Problem ID='p1'><Body>Ann has 3 pens.</Body>"
          "<Question>How many?</Question><Answer>3 (pens)</Answer></Problem></ProblemSet></Machine-Reading-Corpus-File>")
BBH = "Today is 1/1/2020. What is the date tomorrow?\nOptions:\n(A) 01/02/2020\n(B) 01/03/2020"


def case(id_, build, expect, **kw):
    return pytest.param(build, expect, kw, id=id_)


# Each: (id, argv builder on a World, a substring the one error line must hold). Distinct inputs.
CASES = [
    # ---- data files --------------------------------------------------------------------------
    case("data-missing", lambda w: w.train("--train-file", w.tmp / "nope.jsonl"), "nope.jsonl"),
    case("data-is-folder", lambda w: w.train("--train-file", w.dir("folder.jsonl")), "folder.jsonl: is a folder"),
    case("data-empty", lambda w: w.train("--train-file", w.file("e.jsonl", "")), "e.jsonl: file is empty"),
    case("data-whitespace-only", lambda w: w.train("--train-file", w.file("ws.jsonl", " \n\t\n  ")), "ws.jsonl: file is empty"),
    case("data-binary", lambda w: w.train("--train-file", w.file("bin.jsonl", bytes(range(256)) * 4)), "bin.jsonl: not UTF-8"),
    case("data-latin1", lambda w: w.train("--train-file", w.file("l1.jsonl", '{"question": "caf\xe9", "answer": "#### 1"}'.encode("latin-1"))),
         "l1.jsonl: not UTF-8"),
    case("data-truncated-line", lambda w: w.train("--train-file", w.file("t.jsonl", jsonl(GSM[:2]) + '{"question": "q", "answ')),
         "t.jsonl: line 3"),
    case("data-truncated-array", lambda w: w.train("--train-file", w.file("ta.json", json.dumps(GSM)[:-30])),
         "ta.json: line 1: invalid JSON"),
    case("data-array-of-numbers", lambda w: w.train("--train-file", w.file("nums.json", "[1, 2, 3]")),
         "nums.json: item 0: expected a JSON object, got int"),
    case("data-json-scalar-lines", lambda w: w.train("--train-file", w.file("sc.jsonl", "42\n43\n")), "sc.jsonl: line 1: expected a JSON object"),
    case("data-wrong-field-names", lambda w: w.train("--train-file", w.file("wf.jsonl", jsonl([{"q": "x", "a": "#### 1"}]))),
         "wf.jsonl: line 1: missing required field 'question'"),
    case("data-answer-is-list", lambda w: w.train("--train-file", w.file("al.jsonl", jsonl([{"question": "x", "answer": ["#### 1"]}]))),
         "al.jsonl: line 1: field 'answer' should be a string, got list"),
    case("data-question-is-number", lambda w: w.train("--train-file", w.file("qn.jsonl", jsonl([GSM[0], {"question": 5, "answer": "#### 1"}]))),
         "qn.jsonl: line 2: field 'question' should be a string"),
    case("data-no-####", lambda w: w.train("--train-file", w.file("nh.jsonl", jsonl([{"question": "x", "answer": "It is 3."}]))),
         "nh.jsonl: line 1: field 'answer' should end with a line '#### <number>'"),
    case("data-####-not-a-number", lambda w: w.train("--train-file", w.file("nn.jsonl", jsonl([{"question": "x", "answer": "#### three"}]))),
         "nn.jsonl: line 1: cannot parse the gold answer 'three'"),
    case("data-####-5000-digits", lambda w: w.train("--train-file", w.file("big.jsonl", jsonl([{"question": "x", "answer": "#### " + "9" * 5000}]))),
         "big.jsonl: line 1: unreadable record"),
    case("data-nested-100k-deep", lambda w: w.train("--train-file", w.file("deep.json", "[" * 100_000 + "]" * 100_000)),
         "deep.json: JSON nested too deeply"),
    case("data-aqua-options-string", lambda w: w.train("--task", "aqua", "--train-file", w.file("aq1.jsonl", jsonl(
        [{"question": "x", "options": "A)1 B)2", "correct": "A"}]))), "aq1.jsonl: line 1: field 'options' should be a list"),
    case("data-aqua-correct-letter-out-of-range", lambda w: w.train("--task", "aqua", "--train-file", w.file("aq2.jsonl", jsonl(
        [{"question": "x", "options": ["A)1", "B)2", "C)3", "D)4", "E)5"], "correct": "F"}]))),
         "aq2.jsonl: line 1: cannot parse the gold answer 'F'; expected one of ABCDE"),
    case("data-aqua-options-misordered", lambda w: w.train("--task", "aqua", "--train-file", w.file("aq3.jsonl", jsonl(
        [{"question": "x", "options": ["B)1", "A)2"], "correct": "A"}]))), "aq3.jsonl: line 1: option 0 is lettered 'B'"),
    case("data-strategyqa-answer-maybe", lambda w: w.train("--task", "strategyqa", "--train-file", w.file("sq.json", json.dumps(
        [{"question": "x?", "answer": "maybe"}]))), "sq.json: item 0: cannot parse the gold answer 'maybe'; expected true/false"),
    case("data-strategyqa-facts-number", lambda w: w.train("--task", "strategyqa", "--train-file", w.file("sq2.json", json.dumps(
        [{"question": "x?", "answer": True, "facts": 7}]))), "sq2.json: item 0: field 'facts' should be a list"),
    case("data-bbh-target-not-an-option", lambda w: w.train("--task", "date", "--train-file", w.file("bbh.json", json.dumps(
        {"examples": [{"input": BBH, "target": "(E)"}]}))), "bbh.json: example 0: cannot parse the gold answer '(E)'; expected one of AB"),
    case("data-bbh-no-options-block", lambda w: w.train("--task", "date", "--train-file", w.file("bbh2.json", json.dumps(
        {"examples": [{"input": "What day is it?", "target": "(A)"}]}))), "bbh2.json: example 0: field 'input' has no"),
    case("data-bigbench-two-correct", lambda w: w.train("--task", "date", "--train-file", w.file("bb.json", json.dumps(
        {"examples": [{"input": "x?", "target_scores": {"a": 1, "b": 1}}]}))), "bb.json: example 0: cannot parse the gold answer: 2 options"),
    case("data-xml-broken", lambda w: w.train("--task", "asdiv", "--train-file", w.file("broken.xml", XML_OK[:-40])),
         "broken.xml: line 1: invalid XML"),
    case("data-xml-no-problems", lambda w: w.train("--task", "asdiv", "--train-file", w.file("np.xml", "<ProblemSet></ProblemSet>")),
         "np.xml: no <Problem> elements"),
    case("data-xml-for-gsm8k", lambda w: w.train("--train-file", w.file("g.xml", XML_OK)), "g.xml: XML is only read for the ASDiv tasks"),
    case("data-split-on-one-split-task", lambda w: w.train("--train-split", "train"), "split 'train': gsm8k files are already one split"),
    case("data-dev-file-broken", lambda w: w.train("--dev-file", w.file("dev.jsonl", '{"question": oops\n')), "dev.jsonl: line 1: invalid JSON"),
    case("eval-data-file-missing", lambda w: w.eval("--data-file", w.tmp / "gone.jsonl"), "data file not found"),
    case("generate-input-file-empty", lambda w: w.gen("--input-file", w.file("in.jsonl", "\n")), "in.jsonl: file is empty"),
    # ---- flags ---------------------------------------------------------------------------------
    case("train-lr-negative", lambda w: w.train("--lr", "-1"), "lr must be > 0"),
    case("train-lr-nan", lambda w: w.train("--lr", "nan"), "lr should be float, got nan"),
    case("train-lr-inf", lambda w: w.train("--lr", "inf"), "lr should be float, got inf"),
    case("train-batch-size-0", lambda w: w.train("--batch-size", 0), "batch_size must be >= 1, got 0"),
    case("train-epochs-0", lambda w: w.train("--epochs", 0, "--max-steps", 0), "epochs must be >= 1"),
    case("train-max-steps-negative", lambda w: w.train("--max-steps", -5), "max_steps must be >= 0, got -5"),
    case("train-grad-accum-0", lambda w: w.train("--grad-accum", 0), "grad_accum must be >= 1"),
    case("train-warmup-ratio-1.5", lambda w: w.train("--warmup-ratio", 1.5), "warmup_ratio must be in [0, 1), got 1.5"),
    case("train-dev-fraction-1", lambda w: w.train("--dev-fraction", 1), "dev_fraction must be in [0, 1)"),
    case("train-weight-decay-negative", lambda w: w.train("--weight-decay", -0.1), "weight_decay must be >= 0"),
    case("train-max-grad-norm-0", lambda w: w.train("--max-grad-norm", 0), "max_grad_norm must be > 0"),
    case("train-max-length-too-small", lambda w: w.train("--max-length", 4), "max_length must be >= 8, got 4"),
    case("train-limit-negative", lambda w: w.train("--limit", -1), "limit must be >= 0"),
    case("train-save-every-negative", lambda w: w.train("--save-every", -1), "save_every and eval_every must be >= 0"),
    case("train-n-mix-reversed", lambda w: w.train("--train-n-mix", "8-2"), "train_n_mix must be 'LOW-HIGH'"),
    case("train-n-mix-letters", lambda w: w.train("--train-n-mix", "a-b"), "train_n_mix must be 'LOW-HIGH' with 1 <= LOW <= HIGH, got 'a-b'"),
    case("train-n-mix-superscript", lambda w: w.train("--train-n-mix", "\u00b2-3"), "train_n_mix must be 'LOW-HIGH'"),
    case("train-n-thoughts-0", lambda w: w.train("--n-thoughts", 0), "n_thoughts must be >= 1, got 0"),
    case("train-train-n-thoughts-0", lambda w: w.train("--train-n-thoughts", 0), "train_n_thoughts must be >= 1"),
    case("train-lora-r-0", lambda w: w.train("--lora-r", 0), "lora.r must be >= 1"),
    case("train-no-train-file", lambda w: w.train("--train-file", ""), "--train-file is required"),
    case("train-training-free-method", lambda w: w.train("--method", "zero-shot-cot"), "--method zero-shot-cot: training-free"),
    case("argparse-unknown-task", lambda w: w.train("--task", "gsm9k"), "argument --task: invalid choice: 'gsm9k'"),
    case("argparse-unknown-method", lambda w: w.train("--method", "softcoat"), "argument --method: invalid choice: 'softcoat'"),
    case("argparse-epochs-not-int", lambda w: w.train("--epochs", "ten"), "argument --epochs: invalid int value: 'ten'"),
    case("argparse-unknown-projection-kind", lambda w: w.train("--projection-kind", "conv"), "argument --projection-kind: invalid choice"),
    case("argparse-unknown-scoring", lambda w: w.eval("--scoring", "fuzzy"), "argument --scoring: invalid choice: 'fuzzy'"),
    case("argparse-unknown-flag-with-newline", lambda w: w.eval("--colour\nred"), "unrecognized arguments: --colour red"),
    case("eval-top-p-0", lambda w: w.eval("--do-sample", "--top-p", 0), "top_p must be in (0, 1], got 0.0"),
    case("eval-top-p-1.5", lambda w: w.eval("--do-sample", "--top-p", 1.5), "top_p must be in (0, 1], got 1.5"),
    case("eval-temperature-0", lambda w: w.eval("--do-sample", "--temperature", 0), "temperature must be > 0"),
    case("eval-num-samples-without-sampling", lambda w: w.eval("--num-samples", 3), "num_samples > 1 needs sampling"),
    case("eval-max-new-tokens-0", lambda w: w.eval("--max-new-tokens", 0), "max_new_tokens must be >= 1"),
    case("eval-min-above-max-new-tokens", lambda w: w.eval("--min-new-tokens", 9), "min_new_tokens must be in 0..max_new_tokens=4"),
    case("eval-top-k-negative", lambda w: w.eval("--top-k", -1), "top_k must be >= 0"),
    case("eval-batch-size-0", lambda w: w.eval("--batch-size", 0), "batch_size must be >= 1"),
    case("eval-n-thoughts-negative", lambda w: w.eval("--n-thoughts", -1), "n_thoughts must be >= 0"),
    case("eval-seeds-reversed", lambda w: w.eval("--seeds", "45-41"), "--seeds '45-41': range '45-41' is reversed"),
    case("eval-seeds-letters", lambda w: w.eval("--seeds", "a-b"), "--seeds 'a-b': expected integers"),
    case("eval-seeds-repeated", lambda w: w.eval("--seeds", "41,42,41"), "seeds must not repeat"),
    case("eval-seeds-huge-range", lambda w: w.eval("--seeds", "1-100000000"), "names over 10000 seeds"),
    case("eval-no-data-file", lambda w: w.eval("--data-file", ""), "--data-file is required"),
    case("generate-batch-size-0", lambda w: w.gen("--batch-size", 0), "--batch-size must be >= 1"),
    case("generate-no-question", lambda w: ["generate", "--checkpoint", w.ck, "--device", "cpu"], "give --question"),
    # ---- devices (this torch build is CPU-only) ----------------------------------------------------
    case("device-cuda-train", lambda w: w.train("--device", "cuda"), "--device cuda: CUDA is not available"),
    case("device-cuda3-eval", lambda w: w.eval("--device", "cuda:3"), "--device cuda:3: CUDA is not available"),
    case("device-tpu-generate", lambda w: w.gen("--device", "tpu"), "--device 'tpu': expected auto, cpu, cuda or cuda:N"),
    case("device-mps-import", lambda w: w.imp("--device", "mps"), "--device 'mps': expected auto, cpu, cuda or cuda:N"),
    case("device-cuda-demo", lambda w: w.demo("--device", "cuda"), "--device cuda: CUDA is not available"),
    # ---- presets --------------------------------------------------------------------------------
    case("preset-missing", lambda w: w.train("--preset", w.tmp / "nope.yaml"), "nope.yaml: preset not found"),
    case("preset-invalid-yaml", lambda w: w.train("--preset", w.preset("model: [unclosed\n", "p1.yaml")), "p1.yaml: not valid YAML"),
    case("preset-not-utf8", lambda w: w.train("--preset", w.preset(b"model:\n  llm: \xff\xfe\n", "p2.yaml")), "p2.yaml: not valid YAML"),
    case("preset-top-level-list", lambda w: w.train("--preset", w.preset("- model\n- train\n", "p3.yaml")),
         "p3.yaml: expected a mapping at top level"),
    case("preset-unknown-key", lambda w: w.train("--preset", w.preset("train: {lr_rate: 0.1}\n", "p4.yaml")),
         "p4.yaml [train]: unknown key(s) ['lr_rate']"),
    case("preset-wrong-type", lambda w: w.train("--preset", w.preset("train: {lr: fast}\n", "p5.yaml")), "p5.yaml [train]: lr should be float"),
    case("preset-section-not-mapping", lambda w: w.train("--preset", w.preset("model: 5\n", "p6.yaml")),
         "p6.yaml: section 'model' should be a mapping, got int"),
    case("preset-unknown-section", lambda w: w.train("--preset", w.preset("modle: {task: gsm8k}\n", "p7.yaml")),
         "p7.yaml: unknown section 'modle'"),
    case("preset-bad-choice", lambda w: w.train("--preset", w.preset("model: {dtype: float8}\n", "p8.yaml")),
         "dtype must be one of ['float32', 'bfloat16', 'float16', 'auto'], got 'float8'"),
    case("preset-null-number", lambda w: w.eval("--preset", w.preset("decoding: {temperature: null}\n", "p9.yaml")),
         "p9.yaml [decoding]: temperature should be float, got None"),
    case("preset-infinite-lr", lambda w: w.train("--preset", w.preset("train: {lr: .inf}\n", "p10.yaml")),
         "p10.yaml [train]: lr should be float, got inf"),
    case("preset-int-keys", lambda w: w.train("--preset", w.preset("train: {1: 2, lr: 0.1}\n", "p11.yaml")),
         "p11.yaml [train]: keys must be strings"),
    case("preset-section-in-legacy-key", lambda w: w.train("--preset", w.preset("model: {lora: 5, lora_r: 4}\n", "p12.yaml")),
         "p12.yaml [model]: lora should be a mapping, got 5"),
    # ---- checkpoint folders ------------------------------------------------------------------------
    case("ckpt-missing", lambda w: w.gen("--checkpoint", w.tmp / "no-ck"), "--checkpoint"),
    case("ckpt-no-config", lambda w: [(w.ck / "softcot_config.json").unlink(), w.gen()][1], "softcot_config.json: not found"),
    case("ckpt-config-not-json", lambda w: [(w.ck / "softcot_config.json").write_text("{'method': softcot"), w.gen()][1],
         "softcot_config.json: line 1: not valid JSON"),
    case("ckpt-config-binary", lambda w: [(w.ck / "softcot_config.json").write_bytes(b"\x80\x81\x00"), w.eval()][1],
         "softcot_config.json: not UTF-8"),
    case("ckpt-config-array", lambda w: [(w.ck / "softcot_config.json").write_text("[1]"), w.gen()][1],
         "softcot_config.json: expected a JSON object"),
    case("ckpt-config-unknown-key", lambda w: [w.edit_config(n_thought=4), w.gen()][1], "unknown key(s) ['n_thought']"),
    case("ckpt-config-wrong-type", lambda w: [w.edit_config(n_thoughts="4"), w.gen()][1], "n_thoughts should be int, got '4'"),
    case("ckpt-config-unknown-method", lambda w: [w.edit_config(method="softcot-9000"), w.eval()][1], "unknown method 'softcot-9000'"),
    case("ckpt-config-llm-moved", lambda w: [w.edit_config(llm=str(w.tmp / "moved")), w.gen()][1],
         "softcot_config.json: llm: model folder"),
    case("ckpt-missing-weights", lambda w: [(w.ck / "projection.safetensors").unlink(), w.gen()][1],
         "projection.safetensors: not found"),
    case("ckpt-truncated-weights", lambda w: [w.ck_weights(weights_of(w)[:-7]), w.eval()][1],
         "projection.safetensors: not a readable safetensors file"),
    case("ckpt-garbage-weights", lambda w: [w.ck_weights(b"\xff" * 64), w.gen()][1], "projection.safetensors: not a readable safetensors"),
    case("ckpt-wrong-shape-tensor", lambda w: [w.ck_tensors(**{"net.weight": torch.zeros(32, 7)}), w.gen()][1],
         "net.weight has shape (32, 7), expected (32, 24)"),
    case("ckpt-extra-tensor", lambda w: [w.ck_tensors(extra=torch.zeros(2)), w.eval()][1], "projection.safetensors: holds tensors"),
    case("ckpt-pickle-as-safetensors", lambda w: [w.ck_weights(pickle.dumps(Payload(w.marker))), w.gen()][1],
         "projection.safetensors: not a readable safetensors"),
    # ---- a training output folder's resume state ------------------------------------------------------
    case("train-state-legacy-pickle", lambda w: [w.dir("out"), torch.save({"optimizer": Payload(w.marker)}, w.tmp / "out" / "train_state.pt"),
                                                 w.train()][2], "train_state.pt: a pickled resume state"),
    case("train-state-pointer-garbage", lambda w: [w.out_state(b"\x00garbage{"), w.train()][1], "train_state.json: not valid JSON"),
    case("train-state-pointer-wrong-format", lambda w: [w.out_state(json.dumps({"format": "x", "version": 9})), w.train()][1],
         "train_state.json: expected a train-state pointer with format"),
    case("train-state-pointer-escapes", lambda w: [w.out_state(json.dumps({**POINTER, "dir": "../ck"})), w.train()][1],
         "'dir' must name an existing state-NNNNNNNN folder, got '../ck'"),
    case("train-state-other-settings", lambda w: [w.out_state(json.dumps(POINTER), {
        "format": "softcot-train-state", "version": 1, "meta": {"train_config": {"lr": 0.5}}}), w.train()][1],
         "holds a run with other settings"),
    # ---- model folders --------------------------------------------------------------------------------
    case("model-folder-missing", lambda w: w.eval_zs("--llm", w.tmp / "no-model"), "--llm: model folder"),
    case("model-folder-empty", lambda w: w.eval_zs("--llm", w.dir("empty-model")), "empty-model' not found or has no config.json"),
    case("model-config-garbage", lambda w: [(w.model_copy("m1") / "config.json").write_text("{hidden_size: 32"), w.eval_zs("--llm", w.tmp / "m1")][1],
         "m1/config.json: not valid JSON"),
    case("model-config-not-object", lambda w: [(w.model_copy("m2") / "config.json").write_text("[]"), w.train("--llm", w.tmp / "m2")][1],
         "m2/config.json: expected a JSON object"),
    case("model-no-weights", lambda w: [(w.model_copy("m3") / "model.safetensors").unlink(), w.eval_zs("--llm", w.tmp / "m3")][1],
         "m3' has no weights"),
    case("model-truncated-weights", lambda w: [(p := w.model_copy("m4", "assistant") / "model.safetensors").write_bytes(p.read_bytes()[:1000]),
                                               w.train("--assistant", w.tmp / "m4")][1], "m4/model.safetensors: not a readable safetensors"),
    case("model-llm-not-given", lambda w: w.eval_zs("--llm", ""), "--llm is required"),
    case("model-assistant-not-given", lambda w: w.train("--assistant", ""), "--assistant is required"),
    # ---- output paths -----------------------------------------------------------------------------------
    case("train-output-dir-is-file", lambda w: w.train("--output-dir", w.file("taken", "x")), "--output-dir"),
    case("train-output-dir-below-file", lambda w: w.train("--output-dir", Path(w.file("blocker", "x")) / "run"), "blocker is a file, not a folder"),
    case("train-output-dir-read-only", lambda w: [os.chmod(w.dir("ro"), 0o555), w.train("--output-dir", w.tmp / "ro" / "run")][1],
         "ro is not writable", needs_permissions=True),
    case("eval-output-dir-is-file", lambda w: w.eval("--output-dir", w.file("ev-file", "x")), "ev-file: exists and is not a folder"),
    case("generate-output-missing-folder", lambda w: w.gen("--output", w.tmp / "nodir" / "out.jsonl"), "nodir does not exist"),
    case("generate-output-is-folder", lambda w: w.gen("--output", w.dir("outdir")), "outdir: is a folder; expected a file path"),
    case("report-out-is-file", lambda w: ["report", w.ev, "--out", w.file("rep", "x")], "--out"),
    case("import-output-dir-is-file", lambda w: w.imp("--output-dir", w.file("imp", "x")), "imp: exists and is not a folder"),
    # ---- an earlier evaluation folder -------------------------------------------------------------------
    case("eval-run-config-garbage", lambda w: [(w.ev / "run_config.json").write_text("{not json"), w.eval()][1],
         "run_config.json: not valid JSON"),
    case("eval-run-config-wrong-shape", lambda w: [(w.ev / "run_config.json").write_text("[1, 2]"), w.eval()][1],
         "run_config.json: expected an object with 'method', 'eval' and 'decoding'"),
    case("eval-predictions-without-run-config", lambda w: [(w.ev / "run_config.json").unlink(), w.eval()][1],
         "predictions.jsonl: exists without run_config.json"),
    case("eval-prediction-row-not-object", lambda w: [(w.ev / "predictions.jsonl").write_text("[1]\n"), w.eval()][1],
         "predictions.jsonl: line 1: expected a prediction row"),
    # ---- report --------------------------------------------------------------------------------------
    case("report-no-metrics", lambda w: ["report", w.dir("nothing-here"), "--out", w.tmp / "rep"], "nothing-here: no metrics.json"),
    case("report-metrics-garbage", lambda w: ["report", metrics_dir(w, b"\x00\xff garbage"), "--out", w.tmp / "rep"],
         "metrics.json: not a softcot metrics file"),
    case("report-metrics-array", lambda w: ["report", metrics_dir(w, "[]"), "--out", w.tmp / "rep"], "expected a JSON object, got list"),
    case("report-metrics-no-accuracy", lambda w: ["report", metrics_dir(w, json.dumps({"method": "m", "task": "gsm8k"})), "--out", w.tmp / "rep"],
         "'accuracy_mean' should be a number"),
    case("report-missing-run-folder", lambda w: ["report", w.tmp / "no-runs", "--out", w.tmp / "rep"], "no-runs: no metrics.json"),
    # ---- demo ------------------------------------------------------------------------------------------
    case("demo-seeds-reversed", lambda w: w.demo("--seeds", "43-41"), "--seeds '43-41': range '43-41' is reversed"),
    case("demo-unknown-method", lambda w: w.demo("--methods", "softcot,magic"), "--methods: unknown ['magic']"),
    case("demo-n-sweep-letters", lambda w: w.demo("--n-sweep", "1,x"), "--n-sweep '1,x'"),
    case("demo-temperature-0", lambda w: w.demo("--temperature", 0), "temperature must be > 0"),
    case("demo-epochs-0", lambda w: w.demo("--epochs", 0), "epochs must be >= 1"),
    case("demo-limit-negative", lambda w: w.demo("--limit-test", -3), "--limit-test must be >= 0"),
    case("demo-train-file-missing", lambda w: w.demo("--train-file", w.tmp / "no-train.jsonl"), "no-train.jsonl"),
    case("demo-output-dir-is-file", lambda w: w.demo("--output-dir", w.file("demo-file", "x")), "demo-file: exists and is not a folder"),
    case("demo-llm-missing", lambda w: w.demo("--llm", w.tmp / "no-llm"), "--llm: model folder"),
    # ---- import-reference ------------------------------------------------------------------------------
    case("import-bin-missing", lambda w: w.imp("--projection-bin", w.tmp / "none.bin"), "--projection-bin"),
    case("import-bin-malicious-pickle", lambda w: [torch.save({"weight": Payload(w.marker)}, w.tmp / "evil.bin"),
                                                   w.imp("--projection-bin", w.tmp / "evil.bin")][1], "evil.bin: not a torch state dict"),
    case("import-bin-garbage", lambda w: w.imp("--projection-bin", w.file("junk.bin", b"\x00junk" * 10)), "junk.bin: not a torch state dict"),
    case("import-bin-wrong-shape", lambda w: [torch.save({"weight": torch.zeros(32, 5)}, w.tmp / "ws.bin"),
                                              w.imp("--projection-bin", w.tmp / "ws.bin")][1], "expected (32, 24)"),
]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below `root`: file bytes, None for a folder."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model for a bad input fails the test (the check must come first)."""
    import softcot.frozen

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was loaded ({args[:1]}) before the bad input was refused")

    monkeypatch.setattr(softcot.frozen, "load_frozen_lm", refuse)


@pytest.fixture
def stderr_logging(capsys):
    """Log records go to (captured) stderr as in a real run, so a stray log line counts as output."""
    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    root.setLevel(level)


def run_cli(argv, capsys) -> tuple[int, str, str, list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own errors
            code = e.code
    out = capsys.readouterr()
    shown = [w for w in caught if not issubclass(w.category, (DeprecationWarning, PendingDeprecationWarning))]
    return code, out.out, out.err, shown


def assert_one_error_line(code, out, err, shown, expect) -> str:
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert out == "", out
    assert not shown, [str(w.message) for w in shown]
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "\r" not in err, err
    line = lines[0]
    assert line.startswith("softcot: error: ") and len(line) > len("softcot: error: ")
    assert expect in line, line
    return line


def test_at_least_60_distinct_cases():
    ids = [p.id for p in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 60


def test_payload_runs_when_unpickled(tmp_path):
    """The planted pickles below are live: unpickling this one creates its marker."""
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("build, expect, opts", CASES)
def test_bad_input_one_line(build, expect, opts, tiny_pair, ckpt_src, tmp_path, capsys, monkeypatch, no_model_load,
                            stderr_logging):
    if opts.get("needs_permissions") and os.geteuid() == 0:
        pytest.skip("root ignores file permissions")
    monkeypatch.chdir(tmp_path)  # relative defaults (runs/demo, report/) land in the scratch folder
    w = World(tmp_path, tiny_pair, ckpt_src[0])
    argv = build(w)
    before = snapshot(tmp_path)
    try:
        line = assert_one_error_line(*run_cli(argv, capsys), expect)
    finally:
        for p in tmp_path.rglob("*"):  # a read-only case must not block the cleanup
            if p.is_dir():
                p.chmod(0o755)
    assert snapshot(tmp_path) == before, "an input or earlier output was changed, or something new was written"
    assert not w.marker.exists(), "a planted pickle was unpickled"
    assert "\n" not in line


# ---- property-based fuzzing ------------------------------------------------------------------------
def json_values(max_leaves: int = 10):
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=max_leaves)


FIELDS = ["question", "answer", "options", "correct", "rationale", "input", "target", "target_scores", "facts", "qid",
          "Body", "Question", "Answer", "Formula", "body", "examples"]
ANSWERS = st.one_of(st.text(max_size=20), st.builds(lambda a, b: f"{a}\n#### {b}", st.text(max_size=10), st.text(max_size=8)),
                    st.from_regex(r"####\s?-?[0-9,.$/%]{0,8}( \w+)?", fullmatch=True),
                    st.lists(st.from_regex(r"\(?[A-Fa-z]\)? ?[0-9a-z]{0,3}", fullmatch=True), max_size=7),
                    st.builds(lambda q, opts: q + "\nOptions:\n" + "\n".join(opts), st.text(max_size=10),
                              st.lists(st.from_regex(r"\([A-H]\) \w{0,4}", fullmatch=True), max_size=4)))
RECORDS = st.dictionaries(st.sampled_from(FIELDS), ANSWERS | json_values(4), max_size=6)


def xml_doc(problems) -> str:
    from xml.sax.saxutils import escape

    body = "".join("<Problem ID='p{}'>{}</Problem>".format(i, "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in p.items()))
                   for i, p in enumerate(problems))
    return f"<Machine-Reading-Corpus-File><ProblemSet>{body}</ProblemSet></Machine-Reading-Corpus-File>"


VALID = {"gsm8k": GSM[0], "asdiv": {"Body": "Ann has 3 pens.", "Question": "How many?", "Answer": "3 (pens)", "Formula": "3=3"},
         "aqua": {"question": "x?", "options": ["A)1", "B)2"], "correct": "B", "rationale": "It is 2."},
         "strategyqa": {"qid": "q1", "question": "Is it?", "answer": True, "facts": ["a fact"]},
         "date": {"input": BBH, "target": "(A)"}}
EXTRA = ["facts", "rationale", "qid", "Formula", "target_scores", "options", "correct", "input", "target", "answer",
         "question", "Body", "Question", "Answer", "@ID", "Grade"]


@st.composite
def mutated_records(draw, task: str):
    """A valid record of `task` with one to three fields replaced by any JSON value, or dropped."""
    rec = dict(VALID[task])
    for key in draw(st.lists(st.sampled_from(sorted(rec) + EXTRA[:4]), min_size=1, max_size=3)):
        if draw(st.booleans()) and key in rec:
            del rec[key]
        else:
            rec[key] = draw(ANSWERS | json_values(4))
    return rec


def mutated_files(task: str):
    records = st.lists(mutated_records(task), min_size=1, max_size=3)
    return st.one_of(records.map(lambda rs: jsonl(rs).encode()), records.map(lambda rs: json.dumps({"examples": rs}).encode()),
                     records.map(lambda rs: xml_doc(rs).encode()))


DATA_FILES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    json_values().map(lambda v: json.dumps(v).encode()),
    st.lists(RECORDS | json_values(4), min_size=1, max_size=5).map(lambda rs: jsonl(rs).encode()),
    st.lists(RECORDS, max_size=4).map(lambda rs: json.dumps(rs).encode()),
    st.lists(RECORDS, max_size=4).map(lambda rs: json.dumps({"examples": rs}).encode()),
    st.lists(st.dictionaries(st.sampled_from(["Body", "Question", "Answer", "Formula"]), st.text(max_size=12)),
             max_size=3).map(lambda ps: xml_doc(ps).encode()),
    st.tuples(st.lists(RECORDS, min_size=1, max_size=3), st.integers(1, 40)).map(lambda t: jsonl(t[0]).encode()[:-t[1]]),
)


@FUZZ
@given(task=st.sampled_from(sorted(VALID)), suffix=st.sampled_from([".jsonl", ".json", ".xml"]), data=st.data())
def test_fuzz_data_files(tmp_path, task, suffix, data):
    """Any bytes as a data file (random, or a valid record of the task with fields broken): examples,
    or DataError (a ValueError) in one line naming the file."""
    from softcot.data import DataError, Example, load_examples

    content = data.draw(DATA_FILES | mutated_files(task), label="content")
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = load_examples(task, path)
        except DataError as e:
            msg = str(e)
            assert len(msg.splitlines()) == 1 and str(path) in msg, msg
            return
    assert all(isinstance(x, Example) for x in out)


PAIRS = [(task, key) for task in sorted(VALID) for key in sorted(set(VALID[task]) | {"facts", "rationale", "qid", "target_scores"})]
WRONG = st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.text(max_size=8), ANSWERS,
                  st.lists(json_values(3), max_size=3), st.dictionaries(st.text(max_size=4), json_values(3), max_size=3),
                  st.just(KeyError))  # KeyError: the field is dropped


@FUZZ
@given(values=st.lists(WRONG, min_size=len(PAIRS), max_size=len(PAIRS)))
def test_fuzz_record_fields(tmp_path, values):
    """Every field of a valid record of every task, one at a time, set to any JSON value or dropped:
    examples, or DataError in one line naming the file and the item."""
    from softcot.data import DataError, load_examples

    path = tmp_path / "records.json"
    for (task, key), value in zip(PAIRS, values):
        rec = {k: v for k, v in VALID[task].items() if k != key}
        if value is not KeyError:
            rec[key] = value
        path.write_text(json.dumps([VALID[task], rec]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                load_examples(task, path)
            except DataError as e:
                assert len(str(e).splitlines()) == 1 and f"{path}: item 1" in str(e), (task, key, str(e))


YAML_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6) | st.integers(), c, max_size=3),
                           max_leaves=8)


def section_keys():
    import dataclasses

    from softcot.config import DecodingConfig, EvalConfig, ModelConfig, TrainConfig, LEGACY_KEYS
    from softcot.demo import DemoConfig

    names = {f.name for cls in (ModelConfig, TrainConfig, EvalConfig, DecodingConfig, DemoConfig) for f in dataclasses.fields(cls)}
    return sorted(names | set(LEGACY_KEYS) | {"n_thoughts"})


SECTION_CLASSES = ("model", "train", "eval", "decoding", "demo")


@FUZZ
@given(preset=st.dictionaries(st.sampled_from(SECTION_CLASSES + ("modle",)),
                              st.dictionaries(st.sampled_from(section_keys()) | st.text(max_size=6), YAML_VALUES, max_size=5)
                              | YAML_VALUES, max_size=4))
def test_fuzz_presets(tmp_path, preset):
    """Any YAML mapping as a preset: the configs it names, or ConfigError in one line."""
    from softcot.config import DecodingConfig, EvalConfig, ModelConfig, TrainConfig, from_dict, load_yaml_preset
    from softcot.demo import DemoConfig
    from softcot.errors import ConfigError

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(preset))
    classes = {"model": ModelConfig, "train": TrainConfig, "eval": EvalConfig, "decoding": DecodingConfig, "demo": DemoConfig}
    try:
        data = load_yaml_preset(path)
        for section, cls in classes.items():
            from_dict(cls, data.get(section) or {}, source=f"{path} [{section}]")
    except ConfigError as e:
        assert len(str(e).splitlines()) == 1, str(e)


def numeric_fields():
    import dataclasses

    from softcot.config import SECTIONS, DecodingConfig, EvalConfig, ModelConfig, TrainConfig

    out = []
    for cls in (ModelConfig, TrainConfig, EvalConfig, DecodingConfig, *SECTIONS.values()):
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, (int, float, list)) or f.name in ("train_n_mix", "seeds"):
                out.append((cls, f.name))
    return out


ANY_VALUE = st.one_of(st.integers(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(), st.booleans(),
                      st.none(), st.text(max_size=12), st.from_regex(r"-?[0-9]{1,6}(-[0-9]{0,6})?(,[0-9]{1,4})*", fullmatch=True),
                      st.lists(st.integers() | st.text(max_size=3) | st.floats(), max_size=4))


@FUZZ
@given(field=st.sampled_from(numeric_fields()), value=ANY_VALUE)
def test_fuzz_config_values(field, value):
    """Any value for a numeric config field (as from a preset or JSON): a config or ConfigError."""
    from softcot.config import from_dict
    from softcot.errors import ConfigError

    cls, name = field
    try:
        cfg = from_dict(cls, {name: value})
    except ConfigError as e:
        assert len(str(e).splitlines()) == 1, str(e)
        return
    got = getattr(cfg, name)
    if isinstance(got, float):
        assert got == got and abs(got) != float("inf")  # finite


CLI_FLAGS = [("train", f) for f in ("--lr", "--epochs", "--batch-size", "--grad-accum", "--warmup-ratio", "--dev-fraction",
                                    "--max-length", "--max-grad-norm", "--weight-decay", "--max-steps", "--train-n-thoughts",
                                    "--train-n-mix", "--limit", "--seed", "--n-thoughts", "--lora-r", "--projection-hidden")] + \
            [("eval", f) for f in ("--seeds", "--batch-size", "--limit", "--n-thoughts", "--max-new-tokens", "--min-new-tokens",
                                   "--temperature", "--top-p", "--top-k", "--num-samples", "--device")]


@FUZZ
@given(flag=st.sampled_from(CLI_FLAGS), value=st.one_of(st.integers().map(str), st.floats().map(repr), st.text(max_size=12),
                                                       st.from_regex(r"-?[0-9]{1,3}(\.[0-9]+)?(-[0-9]{1,3})?", fullmatch=True)))
def test_fuzz_cli_flags(flag, value, tiny_pair, tmp_path, capsys, no_model_load, stderr_logging):
    """Any flag value, with a data file that is missing: exit code 2 and one line, whatever is wrong first."""
    cmd, name = flag
    a, l = tiny_pair
    base = {"train": ["train", "--assistant", a, "--llm", l, "--output-dir", tmp_path / "o"],
            "eval": ["eval", "--method", "zero-shot-cot", "--llm", l, "--output-dir", tmp_path / "o"]}[cmd]
    before = snapshot(tmp_path)
    code, out, err, shown = run_cli([*base, "--train-file" if cmd == "train" else "--data-file", tmp_path / "missing.jsonl",
                                     f"{name}={value}"], capsys)
    line = assert_one_error_line(code, out, err, shown, "")
    field = name[2:].replace("-", "_")
    named = (name, field, field.replace("_", ".", 1), "missing.jsonl")  # the flag, its field, or the first real problem
    assert any(x in line for x in named), line
    assert snapshot(tmp_path) == before


def safetensors_like():
    """Bytes shaped like a safetensors file (a length, a JSON header, data), often inconsistent."""
    entry = st.fixed_dictionaries({"dtype": st.sampled_from(["F32", "F16", "I64", "X9"]) | st.integers(),
                                   "shape": st.lists(st.integers(-2, 40), max_size=3) | st.text(max_size=3),
                                   "data_offsets": st.lists(st.integers(-4, 5000), max_size=3)})
    header = st.dictionaries(st.sampled_from(["net.weight", "net.bias", "gain", "target_rms", "__metadata__", "x"]),
                             entry | json_values(3), max_size=4)

    def build(h, data, lie):
        raw = json.dumps(h).encode()
        return struct.pack("<Q", max(0, len(raw) + lie)) + raw + data

    return st.builds(build, header, st.binary(max_size=512), st.integers(-8, 8) | st.just(0))


@FUZZ
@given(config=st.one_of(st.binary(max_size=200), json_values().map(lambda v: json.dumps(v).encode()),
                        st.dictionaries(st.sampled_from(section_keys()), json_values(4), max_size=5).map(lambda d: json.dumps(d).encode())),
       weights=st.one_of(st.binary(max_size=300), safetensors_like()))
def test_fuzz_checkpoint_folder(config, weights, tmp_path, ckpt_src):
    """Any bytes as softcot_config.json / projection.safetensors: a config and tensors, or a one-line
    ConfigError / CheckpointError; never another exception."""
    from softcot.checks import safetensors_shapes
    from softcot.errors import CheckpointError, ConfigError
    from softcot.methods import read_checkpoint_config

    _, method = ckpt_src
    ck = tmp_path / "ck"
    ck.mkdir(exist_ok=True)
    (ck / "softcot_config.json").write_bytes(config)
    (ck / "projection.safetensors").write_bytes(weights)
    for step in (lambda: read_checkpoint_config(ck), lambda: safetensors_shapes(ck / "projection.safetensors"),
                 lambda: method.load_trained(ck)):
        try:
            step()
        except (ConfigError, CheckpointError) as e:
            assert len(str(e).splitlines()) == 1, str(e)
