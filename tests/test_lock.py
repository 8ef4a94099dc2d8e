"""One output folder, one run (softcot.lock), and a full disk (ENOSPC) while a checkpoint or a
predictions batch is written: through real processes where it matters (a live `softcot eval` in a
subprocess, a lock holder killed with SIGKILL), in-process where a second run is the test itself."""
import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from softcot.cli import main
from softcot.errors import DiskFull, FolderInUse
from softcot.lock import LOCK_NAME, acquire, output_lock, release
from softcot.utils import append_jsonl, atomic_write_bytes
from tests.test_cli import write_gsm8k

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
       "PYTHONPATH": str(ROOT)}
HOLD = ("import sys, time\nfrom softcot.lock import acquire\n"
        "acquire(sys.argv[1], command='softcot eval --output-dir ' + sys.argv[1])\nprint('held', flush=True)\n"
        "time.sleep(300)")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_pair):
    root = tmp_path_factory.mktemp("lock")
    return {"root": root, "assistant": tiny_pair[0], "llm": tiny_pair[1], "data": write_gsm8k(root / "data.jsonl")}


def eval_args(w, out):
    return ["eval", "--method", "zero-shot-cot", "--llm", w["llm"], "--task", "gsm8k", "--data-file", w["data"],
            "--output-dir", out, "--max-new-tokens", 4, "--do-sample", "--seeds", "41-42", "--batch-size", 2,
            "--device", "cpu", "--threads", 1]


def train_args(w, out):
    return ["train", "--assistant", w["assistant"], "--llm", w["llm"], "--task", "gsm8k", "--train-file", w["data"],
            "--output-dir", out, "--max-steps", 3, "--batch-size", 2, "--save-every", 1, "--lr", 1e-2,
            "--device", "cpu", "--threads", 1]


def error_line(err: str) -> str:
    """The one `softcot: error:` line (a progress bar may be redrawn after it when a run fails)."""
    assert "Traceback" not in err
    # a failed run's progress bar is left open: the error may follow it on its line
    lines = [seg[seg.index("softcot: error: "):] for line in err.splitlines() for seg in line.split("\r")
             if "softcot: error: " in seg]
    assert len(lines) == 1, err
    return lines[0]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def alone(world):
    """An evaluation and a training run, each alone in its folder and never interrupted."""
    ev, tr = world["root"] / "eval-alone", world["root"] / "train-alone"
    assert main([str(a) for a in eval_args(world, ev)]) == 0
    assert main([str(a) for a in train_args(world, tr)]) == 0
    return {"eval": ev, "train": tr}


def files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes but the lock's (which names the run holding the folder)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != LOCK_NAME}


def holder(folder: Path) -> subprocess.Popen:
    """A process that holds `folder`'s lock (as a run would) until it is stopped."""
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def wait_for_lock(folder: Path, pid: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the first run ended before it was seen holding the lock"
        try:
            if json.loads((folder / LOCK_NAME).read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise AssertionError("the first run never took the lock")


REFUSAL = re.compile(r"softcot: error: --output-dir (\S+) is in use by pid (\d+) on host (\S+) \((softcot .*), "
                     r"since \d\d:\d\d:\d\d\); wait for it or stop it")


# ---- one output folder, one run --------------------------------------------------------------------
def test_second_eval_into_a_live_runs_folder_is_refused_at_once_and_the_first_finishes_intact(world, alone, capsys):
    out = world["root"] / "eval-shared"
    first = subprocess.Popen([sys.executable, "-m", "softcot.cli", "-q", *map(str, eval_args(world, out))], env=ENV,
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lock(out, first.pid, first)
        first.send_signal(signal.SIGSTOP)  # keep it mid-run (holding the lock) while the second one tries
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid, "the first run ended too soon"
        before = files(out)
        t0 = time.time()
        code, err = run(capsys, *eval_args(world, out))
        took = time.time() - t0
        assert files(out) == before  # the refused run touched nothing
    finally:
        first.send_signal(signal.SIGCONT)
    assert code == 2 and took < 5, (code, took)
    m = REFUSAL.fullmatch(error_line(err))
    assert m, err
    assert (m[1], int(m[2]), m[3]) == (str(out), first.pid, socket.gethostname())
    assert m[4].startswith("softcot -q eval --method zero-shot-cot --llm")
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err[-2000:]
    # the first run's files are those of a run alone: every (seed, example) once, the same predictions
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert sorted((r["seed"], r["index"]) for r in rows) == [(s, i) for s in (41, 42) for i in range(6)]
    assert (out / "predictions.jsonl").read_bytes() == (alone["eval"] / "predictions.jsonl").read_bytes()
    assert not (out / LOCK_NAME).exists()  # a clean exit leaves no lock file (so no takeover next time)


def test_lock_of_a_killed_run_is_taken_over_and_the_log_says_so(world, capsys, caplog):
    out = world["root"] / "eval-killed"
    p = holder(out)
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == p.pid
    p.kill()  # SIGKILL: no cleanup; the kernel drops the lock, the file still names the dead run
    p.wait()
    with caplog.at_level("INFO", logger="softcot"):
        code, err = run(capsys, *eval_args(world, out))
    assert code == 0, err
    assert f"--output-dir {out}: took over the lock of pid {p.pid} on host {socket.gethostname()} (no longer running" \
        in caplog.text
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 12
    caplog.clear()  # a cleanly ended run is no takeover
    with caplog.at_level("INFO", logger="softcot"):
        with output_lock(out):
            pass
    assert "took over" not in caplog.text


def test_folder_inside_a_live_runs_folder_lm_eval_and_demo_are_refused(world, tmp_path, capsys, monkeypatch):
    held = tmp_path / "demo"
    p = holder(held)
    try:
        # a folder inside the live run's folder (a demo's runs/demo/<method>/.../eval)
        inner = held / "softcot" / "train-seed-41" / "eval"
        code, err = run(capsys, *eval_args(world, inner))
        assert code == 2
        assert error_line(err).startswith(f"softcot: error: --output-dir {inner} is inside {held}, which is in use by "
                                          f"pid {p.pid} on host ")
        assert not inner.exists()
        # softcot demo into it, before anything loads
        code, err = run(capsys, "demo", "--quick", "--output-dir", held, "--device", "cpu")
        assert code == 2 and f"--output-dir {held} is in use by pid {p.pid}" in error_line(err)
        # lm-eval's --output_path (a folder, or a .json file in it)
        for path in (held, held / "results.json"):
            code, err = run(capsys, "lm-eval", "run", "--model", "softcot", "--model_args",
                            f"method=zero-shot-cot,llm={world['llm']}", "--tasks", "gsm8k", "--output_path", path)
            assert code == 2 and f"--output_path {held} is in use by pid {p.pid}" in error_line(err), err
    finally:
        p.kill()
        p.wait()
    # the demo's own train/eval steps run inside its held folder: they take no lock of their own, and
    # a nested hold within one process is allowed (re-entrant)
    seen = {}

    def fake_demo(cfg, device):
        lock = json.loads((Path(cfg.output_dir) / LOCK_NAME).read_text())
        seen["pid"] = lock["pid"]
        with output_lock(Path(cfg.output_dir) / "softcot" / "eval"), output_lock(cfg.output_dir):
            pass

    monkeypatch.setattr("softcot.demo.run_demo", fake_demo)
    code, err = run(capsys, "demo", "--quick", "--output-dir", held, "--device", "cpu")
    assert code == 0, err
    assert seen["pid"] == os.getpid() and not (held / LOCK_NAME).exists()


def test_non_main_process_takes_no_lock_and_holds_nest(tmp_path, monkeypatch):
    a = tmp_path / "a"
    k1 = acquire(a)
    k2 = acquire(a)  # re-entrant
    assert json.loads((a / LOCK_NAME).read_text())["pid"] == os.getpid()
    release(k2)
    assert json.loads((a / LOCK_NAME).read_text())["pid"] == os.getpid()  # still held by the outer hold
    release(k1)
    assert not a.exists()  # created by the hold and left empty: removed again
    (a / "b").mkdir(parents=True)
    (a / "b" / "x").write_text("x")
    with output_lock(a / "b"):
        pass
    assert sorted(p.name for p in (a / "b").iterdir()) == ["x"]  # a folder with files stays, without the lock
    monkeypatch.setenv("RANK", "1")  # accelerate launch: process 1 shares its main process's lock
    assert acquire(tmp_path / "c") is None and not (tmp_path / "c").exists()
    with pytest.raises(FolderInUse):
        monkeypatch.setenv("RANK", "0")
        p = holder(tmp_path / "b")
        try:
            acquire(tmp_path / "b")
        finally:
            p.kill()
            p.wait()


# ---- a full disk --------------------------------------------------------------------------------
def full_disk(monkeypatch, name: str, nth: int, snapshot: Path | None = None):
    """From the `nth` write into a file whose name contains `name` on, the disk is full: half of
    that write lands, then ENOSPC. `snapshot` (a folder) is read just before the first failure."""
    real, state = os.write, {"n": 0, "before": None}

    def write(fd, data):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return real(fd, data)
        if name in Path(target).name:
            state["n"] += 1
            if state["n"] >= nth:
                if state["before"] is None and snapshot is not None:
                    state["before"] = {k: v for k, v in files(snapshot).items() if ".tmp" not in k}
                real(fd, bytes(data[: len(data) // 2]))
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return state


def test_full_disk_while_appending_predictions_keeps_finished_batches_and_resumes(world, alone, capsys, monkeypatch):
    out = world["root"] / "eval-full"
    with monkeypatch.context() as m:
        disk = full_disk(m, "predictions.jsonl", nth=4, snapshot=out)  # the 4th batch of 6 (2 rows each)
        code, err = run(capsys, *eval_args(world, out))
    assert code == 2
    assert error_line(err) == (f"softcot: error: no space left on device while writing {out / 'predictions.jsonl'}; "
                               f"the 6 finished predictions in {out} are intact; free space and rerun the same "
                               "command to resume")
    assert files(out) == disk["before"]  # the torn batch was cut back; nothing else changed
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 6
    code, err = run(capsys, *eval_args(world, out))  # space freed: the same command resumes
    assert code == 0, err
    assert (out / "predictions.jsonl").read_bytes() == (alone["eval"] / "predictions.jsonl").read_bytes()
    per_seed = [json.loads((d / "metrics.json").read_text())["per_seed"] for d in (out, alone["eval"])]
    assert per_seed[0] == per_seed[1]


@pytest.mark.parametrize("target,nth,step", [("tensors.safetensors", 2, 1), ("projection.safetensors", 2, 2)])
def test_full_disk_while_checkpointing_keeps_the_last_good_one_and_resumes(world, alone, capsys, monkeypatch,
                                                                          target, nth, step):
    out = world["root"] / f"train-full-{target}"
    with monkeypatch.context() as m:
        disk = full_disk(m, target, nth=nth, snapshot=out)
        code, err = run(capsys, *train_args(world, out))
    assert code == 2
    written = out / "state-00000002" if target == "tensors.safetensors" else out / target
    assert error_line(err) == (f"softcot: error: no space left on device while writing {written}; the last good "
                               f"checkpoint (step {step}) in {out} is intact; free space and rerun the same command "
                               "to resume")
    assert files(out) == disk["before"]  # the last good checkpoint byte-identical, no temp file left
    assert not [p for p in out.rglob("*") if ".tmp" in p.name]
    code, err = run(capsys, *train_args(world, out))
    assert code == 0, err
    a, b = load_file(out / "projection.safetensors"), load_file(alone["train"] / "projection.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    losses = [[json.loads(x)["loss"] for x in (d / "metrics.jsonl").read_text().splitlines()] for d in (out, alone["train"])]
    assert losses[0] == losses[1] and len(losses[0]) == 3  # the failed step's row was dropped, then redone


def test_full_disk_at_fsync_leaves_old_files_and_no_partial_rows(tmp_path, monkeypatch):
    """Delayed allocation (ext4, XFS, NFS) reports a full disk at fsync: the same guarantees."""
    target, log = tmp_path / "x.safetensors", tmp_path / "rows.jsonl"
    atomic_write_bytes(target, b"old")
    append_jsonl(log, [{"a": 1}])

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(DiskFull, match=f"no space left on device while writing {target}"):
        atomic_write_bytes(target, b"new" * 1000)
    with pytest.raises(DiskFull, match=f"no space left on device while writing {log}"):
        append_jsonl(log, [{"a": 2}, {"a": 3}])
    assert target.read_bytes() == b"old" and log.read_text() == '{"a": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.jsonl", "x.safetensors"]
