"""Resume state: exact round trip, no pickle on disk or on load, one-line errors, crash-safe publish."""
import json
import os
import pickle
import random
import shutil
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file
from transformers import get_scheduler

from softcot.errors import CheckpointError
from softcot.state import legacy_pickle_state, load_train_state, save_train_state


def setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    sched = get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=10)
    return model, opt, sched


def train_steps(model, opt, sched, n):
    """Every RNG the loop may use feeds the loss, so an unrestored one changes the weights."""
    for _ in range(n):
        x, y = torch.randn(8, 4), torch.randn(8, 3)
        noise = random.random() + float(np.random.rand())
        loss = ((model(x) - y) ** 2).mean() * (1 + noise)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)


def save(out, model, opt, sched, step, **meta):
    save_train_state(out, trainable=model.state_dict(), optimizer=opt, scheduler=sched, step=step,
                     meta={"note": "x", **meta})


def scramble_rng():
    torch.manual_seed(999)
    random.seed(999)
    np.random.seed(999)


@pytest.fixture
def saved(tmp_path):
    model, opt, sched = setup()
    train_steps(model, opt, sched, 3)
    save(tmp_path, model, opt, sched, 3)
    return tmp_path


def state_dir(out):
    return out / json.loads((out / "train_state.json").read_text())["dir"]


def test_round_trip_is_bit_identical(tmp_path):
    model, opt, sched = setup()
    train_steps(model, opt, sched, 3)
    save(tmp_path, model, opt, sched, 3)
    train_steps(model, opt, sched, 3)
    w1 = {k: v.clone() for k, v in model.state_dict().items()}

    scramble_rng()
    model2, opt2, sched2 = setup(seed=123)  # other init: every weight must come from the file
    state = load_train_state(tmp_path, opt2, sched2)
    assert state["step"] == 3 and state["meta"] == {"note": "x"}
    model2.load_state_dict(state["trainable"])
    train_steps(model2, opt2, sched2, 3)
    for k, v in model2.state_dict().items():
        assert torch.equal(v, w1[k]), k
    assert sched2.get_last_lr() == sched.get_last_lr()
    assert opt2.param_groups[0]["betas"] == (0.9, 0.999)  # tuples survive JSON


def test_restore_rng_false_leaves_rng_alone(saved):
    _, opt, sched = setup()
    torch.manual_seed(5)
    expected = torch.get_rng_state()
    torch.manual_seed(5)
    load_train_state(saved, opt, sched, restore_rng=False)
    assert torch.equal(torch.get_rng_state(), expected)


def test_no_state_returns_none(tmp_path):
    _, opt, sched = setup()
    assert load_train_state(tmp_path, opt, sched) is None
    assert legacy_pickle_state(tmp_path) is None


def test_saved_files_are_json_or_safetensors_only(saved):
    files = [p for p in saved.rglob("*") if p.is_file()]
    assert sorted(p.relative_to(saved).as_posix() for p in files) == [
        "state-00000003/state.json", "state-00000003/tensors.safetensors", "train_state.json"]
    for p in files:
        data = p.read_bytes()
        assert not data.startswith((b"\x80", b"PK")), p  # pickle protocol 2+ / torch zip
        if p.suffix == ".json":
            json.loads(data)
        else:
            (n,) = struct.unpack("<Q", data[:8])
            json.loads(data[8 : 8 + n])
            with safe_open(str(p), "pt") as f:
                assert "trainable/weight" in f.keys()


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_pickle_is_never_unpickled(saved, tmp_path_factory, monkeypatch):
    marker = tmp_path_factory.mktemp("m") / "pwned"
    payload = pickle.dumps(Evil(marker))
    (saved / "train_state.pt").write_bytes(payload)
    (state_dir(saved) / "extra.pt").write_bytes(payload)

    def forbidden(*a, **k):
        raise AssertionError("unpickling was attempted")

    for mod, fn in [(torch, "load"), (pickle, "load"), (pickle, "loads")]:
        monkeypatch.setattr(mod, fn, forbidden)
    _, opt, sched = setup()
    assert load_train_state(saved, opt, sched)["step"] == 3  # the stray file is ignored
    (state_dir(saved) / "tensors.safetensors").write_bytes(payload)  # pickle posing as tensors
    with pytest.raises(CheckpointError, match="tensors.safetensors"):
        load_train_state(saved, opt, sched)
    assert legacy_pickle_state(saved) == saved / "train_state.pt"
    assert not marker.exists()


def truncate_tensors(out):
    p = state_dir(out) / "tensors.safetensors"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def drop_optimizer_tensor(out):
    p = state_dir(out) / "tensors.safetensors"
    t = load_file(str(p))
    del t["optimizer/0/exp_avg"]
    save_file(t, str(p))


def set_pointer(**kw):
    def edit(out):
        p = out / "train_state.json"
        p.write_text(json.dumps({**json.loads(p.read_text()), **kw}))
    return edit


CORRUPTIONS = {
    "truncated safetensors": (truncate_tensors, "tensors.safetensors"),
    "pointer not JSON": (lambda out: (out / "train_state.json").write_text("{not json"), "train_state.json"),
    "pointer to missing folder": (lambda out: shutil.rmtree(state_dir(out)), "missing"),
    "missing optimizer tensor": (drop_optimizer_tensor, "optimizer/0/exp_avg"),
    "wrong version": (set_pointer(version=2), "version"),
    "pointer escapes folder": (set_pointer(dir="../elsewhere"), "state-NNNNNNNN"),
    "state JSON truncated": (lambda out: (state_dir(out) / "state.json").write_text('{"format"'), "state.json"),
}


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_corrupt_state_raises_one_line(saved, case):
    corrupt, expected = CORRUPTIONS[case]
    corrupt(saved)
    _, opt, sched = setup()
    with pytest.raises(CheckpointError) as e:
        load_train_state(saved, opt, sched)
    assert "\n" not in str(e.value) and expected in str(e.value)


def test_mismatched_optimizer_raises(saved):
    model = torch.nn.Linear(5, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    with pytest.raises(CheckpointError, match="shape"):
        load_train_state(saved, opt, get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=10))


def test_unsavable_scheduler_state_raises(tmp_path):
    model, opt, sched = setup()
    sched.odd = object()  # lands in state_dict()
    with pytest.raises(CheckpointError, match="not JSON-serialisable"):
        save(tmp_path, model, opt, sched, 1)
    assert list(tmp_path.iterdir()) == []


class Crash(BaseException):
    """Stands for SIGKILL: nothing after it runs, no `except Exception` catches it."""


def test_crash_at_any_point_of_publish_leaves_old_or_new(tmp_path, monkeypatch):
    base = tmp_path / "base"
    model, opt, sched = setup()
    train_steps(model, opt, sched, 1)
    save(base, model, opt, sched, 1)
    old_w = model.weight.detach().clone()
    train_steps(model, opt, sched, 1)
    new_w = model.weight.detach().clone()
    real = {(os, "replace"): os.replace, (os, "fsync"): os.fsync, (shutil, "rmtree"): shutil.rmtree}

    def attempt(out, crash_at):
        calls = [0]

        def wrap(fn):
            def inner(*a, **k):
                calls[0] += 1
                if calls[0] == crash_at:
                    raise Crash()
                return fn(*a, **k)
            return inner

        with monkeypatch.context() as m:
            for (mod, name), fn in real.items():
                m.setattr(mod, name, wrap(fn))
            try:
                save(out, model, opt, sched, 2)
            except Crash:
                pass
        return calls[0]

    n = attempt(tmp_path / "count", crash_at=0)
    assert n >= 6
    seen = set()
    for k in range(1, n + 1):
        out = tmp_path / f"crash{k}"
        shutil.copytree(base, out)
        attempt(out, crash_at=k)
        _, opt2, sched2 = setup()
        state = load_train_state(out, opt2, sched2, restore_rng=False)
        assert torch.equal(state["trainable"]["weight"], {1: old_w, 2: new_w}[state["step"]]), k
        seen.add(state["step"])
        save(out, model, opt, sched, 3)  # the next save publishes and sweeps the leftovers
        assert sorted(p.name for p in out.iterdir()) == ["state-00000003", "train_state.json"], k
    assert seen == {1, 2}
