"""The three ideas beyond SoftCoT (question-free SoftCoT, LightThinker-style step compression,
hidden-state re-injection): exact gradients, training through the shared loop and save/load,
the question's absence, the compression mask against an explicit computation, really dropped
cache entries, firing at step boundaries, batched == one-by-one decoding."""
import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F

from softcot.config import DecodingConfig, ModelConfig, TrainConfig, from_dict
from softcot.data import Example
from softcot.llm import IGNORE
from softcot.methods import build_method, load_method
from softcot.methods.stepwise import boundary_ids
from softcot.train import train

N = 3
IDEAS = ["softcot-qfree", "lightthinker", "softcot-lightthinker", "reinject"]


def data(n=4):
    return [Example(id=f"i{i}", task="gsm8k", question=f"Kim has {i} cats{' and dogs' * (i % 3)}. How many pets?",
                    answer=str(2 * i + 2), steps=[f"{i} + {i} = {2 * i}", f"{2 * i} + 2 = {2 * i + 2}"])
            for i in range(n)]


def build(tiny_pair, name, **kw):
    a, l = tiny_pair
    torch.manual_seed(0)
    base = dict(method=name, assistant=a, llm=l, n_thoughts=N, projection={"norm": "none"})
    base.update(kw)
    return build_method(from_dict(ModelConfig, base), "cpu")


def frozen(m):
    own = {id(p) for p in m.trainable_parameters()}
    mods = [m.llm.model] + ([m.assistant.model] if m.assistant is not None else [])
    return [p for mod in mods for p in mod.parameters() if id(p) not in own]


@pytest.mark.parametrize("name", IDEAS)
def test_gradients_training_and_round_trip(tiny_pair, tmp_path, name):
    m = build(tiny_pair, name)
    params = m.trainable_parameters()
    assert params and all(p.dtype == torch.float32 for p in params)
    m.loss(data(), N, 256).backward()
    assert all(p.grad is not None for p in params)  # every trainable tensor is reached
    assert all(p.grad.abs().sum() > 0 for p in m.trainable.parameters())  # (LoRA's A is 0 while B is 0 at init)
    assert all(p.grad is None for p in frozen(m))  # nothing else does
    for p in params:
        p.grad = None
    train(m, TrainConfig(output_dir=str(tmp_path), train_n_thoughts=N, max_steps=2, batch_size=2, lr=1e-2,
                         dev_fraction=0, warmup_ratio=0, max_length=256, seed=1), data())
    back = load_method(tmp_path, "cpu")
    assert type(back) is type(m)
    a, b = m.trainable_state_dict(), back.trainable_state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    dec = DecodingConfig(max_new_tokens=8)
    assert m.generate(data(2), dec, N) == back.generate(data(2), dec, N)


def test_qfree_prompt_omits_the_question(tiny_pair):
    q, s = build(tiny_pair, "softcot-qfree"), build(tiny_pair, "softcot")
    ex = data(2)
    assert q.thought_count() == 16 and q.thought_count(5) == 5
    for ex_, pq, ps in zip(ex, q.prompt_texts(ex, 4), s.prompt_texts(ex, 4)):
        assert ex_.question not in pq and ex_.question in ps
        assert pq.count(q.llm.placeholder) == 4
    embeds, mask = q.generation_inputs(ex, 4)  # the slots are filled: the assistant still reads the question
    assert embeds.shape[0] == 2


def explicit_loss(m, ids, labels, valid, owner, kind, gi) -> torch.Tensor:
    """Each reply position on its own: a plain causal forward over exactly the keys it may see."""
    embeds = m.llm.embed(ids)
    embeds = torch.where((kind == 2)[..., None], m.trainable["gist"](gi.clamp(min=0)), embeds)
    losses = []
    for b in range(ids.shape[0]):
        for t in range(ids.shape[1] - 1):
            if labels[b, t + 1] == IGNORE:
                continue
            keys = [k for k in range(t + 1) if valid[b, k] and not (kind[b, k] == 1 and owner[b, k] < owner[b, t])]
            assert keys[-1] == t
            h = m.llm.model.base_model(inputs_embeds=embeds[b:b + 1, keys],
                                       position_ids=torch.tensor([keys])).last_hidden_state[0, -1]
            losses.append(F.cross_entropy(m.llm.model.get_output_embeddings()(h)[None].float(), labels[b, t + 1][None]))
    return torch.stack(losses).mean()


def test_lightthinker_loss_equals_explicit_masked_computation(tiny_pair):
    m = build(tiny_pair, "lightthinker", lightthinker={"gist_tokens": 2})
    with torch.no_grad():  # non-zero LoRA so that it matters
        for n, p in m.llm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    ex = data(2)
    batch = m.train_batch(ex, 0, 256)
    ids, labels, valid, owner, kind, gi = batch
    assert int((kind == 2).sum()) == 2 * 2 * 2  # two finished steps per row, two gists each
    # a step's tokens are hidden from later steps but seen by their own gists
    mask = m.compression_mask(valid, owner, kind, torch.float32)[0, 0]
    step1 = ((kind[0] == 1) & (owner[0] == 1)).nonzero()[:, 0]
    gists1 = ((kind[0] == 2) & (owner[0] == 1)).nonzero()[:, 0]
    later = ((kind[0] == 1) & (owner[0] == 2)).nonzero()[:, 0]
    assert (mask[gists1][:, step1] == 0).all() and (mask[later][:, step1] < -1e30).all()
    assert (mask[later][:, gists1] == 0).all()
    with torch.no_grad():
        assert torch.allclose(m.loss(ex, 0, 256), explicit_loss(m, *batch), atol=1e-5)


def test_lightthinker_tail_targets_spell_the_end_of_each_step(tiny_pair):
    """With tail_loss, gist j of a step is trained to predict the step's (g-1-j)-th last content
    token (the trailing "." and the boundary skipped), written as the label of gist j+1; the loss
    adds that term and nothing else."""
    g = 3
    m = build(tiny_pair, "lightthinker", lightthinker={"gist_tokens": g, "tail_loss": 0.5})
    ex = data(2)
    ids, labels, valid, owner, kind, gi = m.train_batch(ex, 0, 256)
    tails = m.tail_targets(ids, owner, kind, gi, g, m.content_tokens())
    tok = m.llm.tok
    for b in range(2):
        for s in (1, 2):  # two finished steps per row
            seg = ids[b][(kind[b] == 1) & (owner[b] == s)].tolist()
            where = ((kind[b] == 2) & (owner[b] == s)).nonzero()[:, 0].tolist()
            assert seg[-1] in m.boundary
            text = [tok.decode([i]) for i in seg[:-1]]
            last = max(i for i, t in enumerate(text) if any(c.isalnum() for c in t))  # the result's last character
            assert [tails[b, w].item() for w in where] == [IGNORE] + seg[last + 1 - (g - 1):last + 1]
    assert int((tails != IGNORE).sum()) == 2 * 2 * (g - 1)
    # a step "7 = 1 4 . NL" (ids 7 5 1 4 9 8, "." = 9 and NL = 8 hold no letter or digit) then g gists:
    # the targets are its last content tokens 1 4, not 4 . as the raw tail would give
    step = torch.tensor([[7, 5, 1, 4, 9, 8, 0, 0, 0]])
    own, knd = torch.tensor([[1] * 9]), torch.tensor([[1] * 6 + [2] * 3])
    gis = torch.tensor([[-1] * 6 + [0, 1, 2]])
    content = torch.ones(10, dtype=torch.bool)
    content[[8, 9]] = False
    assert m.tail_targets(step, own, knd, gis, 3, content)[0, 6:].tolist() == [IGNORE, 1, 4]
    assert m.tail_targets(step, own, knd, gis, 3)[0, 6:].tolist() == [IGNORE, 4, 9]
    with torch.no_grad():
        h, lab, t = m.hidden(ex, 0, 256, tails=True)
        head = m.llm.model.get_output_embeddings()
        sel, tsel = lab[:, 1:] != IGNORE, t[:, 1:] != IGNORE
        want = (F.cross_entropy(head(h[:, :-1][sel]), lab[:, 1:][sel])
                + 0.5 * F.cross_entropy(head(h[:, :-1][tsel]), t[:, 1:][tsel]))
        assert torch.allclose(m.loss(ex, 0, 256), want, atol=1e-5)
        off = build(tiny_pair, "lightthinker", lightthinker={"gist_tokens": g})
        assert torch.allclose(off.loss(ex, 0, 256), F.cross_entropy(head(h[:, :-1][sel]), lab[:, 1:][sel]), atol=1e-5)


def test_lightthinker_fade_curriculum(tiny_pair, tmp_path):
    """lightthinker.fade: one training phase per weight in which later tokens still see a compressed
    step's own tokens at that weight (log(w) added to their attention logits), then the compressed
    phase; evaluation and decoding always see the gists alone; the trainer runs every phase."""
    from softcot.config import LightThinkerConfig
    from softcot.errors import ConfigError

    for bad in ("2", "0.5,x", "0"):
        with pytest.raises(ConfigError, match="lightthinker.fade"):
            LightThinkerConfig(fade=bad)
    m = build(tiny_pair, "lightthinker", lightthinker={"gist_tokens": 2, "fade": "0.5"})
    assert m.training_phases() == ["fade0.5", "compressed"]
    ex = data(2)
    ids, labels, valid, owner, kind, gi = m.train_batch(ex, 0, 256)
    hard = m.compression_mask(valid, owner, kind, torch.float32)
    soft = m.compression_mask(valid, owner, kind, torch.float32, 0.5)
    hidden = (hard < -1e30) & (soft > -1e30)  # exactly the earlier steps' tokens
    assert int(hidden.sum()) > 0 and torch.allclose(soft[hidden], torch.tensor(math.log(0.5)))
    assert torch.equal(soft[~hidden], hard[~hidden])  # causality and padding unchanged
    m.enter_phase(0)
    with torch.no_grad():
        evaluated = m.loss(ex, 0, 256)  # no gradient: the compressed model
    assert not torch.allclose(m.loss(ex, 0, 256).detach(), evaluated)  # a training step sees the faded steps
    m.enter_phase(1)
    assert torch.allclose(m.loss(ex, 0, 256).detach(), evaluated)
    train(m, TrainConfig(output_dir=str(tmp_path), max_steps=1, batch_size=2, lr=1e-2, dev_fraction=0,
                         warmup_ratio=0, max_length=256, seed=1), data())
    assert all((tmp_path / p / "metrics.jsonl").is_file() for p in m.training_phases())
    assert m.fade_weight == 0.0 and type(load_method(tmp_path, "cpu")) is type(m)


def frequent_char(m, ex) -> str:
    """A character the tiny random LLM emits often, to serve as a step boundary."""
    out = m.generate(ex, DecodingConfig(max_new_tokens=24))
    return Counter("".join(c[0] for c in out)).most_common(1)[0][0]


def test_lightthinker_cache_really_drops_steps(tiny_pair):
    probe = build(tiny_pair, "reinject")
    ch = frequent_char(probe, data(3))
    m = build(tiny_pair, "lightthinker", lightthinker={"gist_tokens": 1, "boundary": ch})
    ex = data(3)
    dec = DecodingConfig(max_new_tokens=24)
    out = m.generate(ex, dec)
    stats = m.last_stats
    _, mask = m.llm.encode_prompts(m.prompt_texts(ex, 0))
    plain = [int(mask[i].sum()) + out[i][0].tokens for i in range(3)]  # what plain decoding would cache
    assert sum(stats["fires"]) > 0
    for i in range(3):
        if stats["fires"][i] >= 2:
            assert stats["peak_cached"][i] < plain[i]
    assert stats["peak_physical"] < mask.shape[1] + 24
    one = [m.generate([e], dec)[0] for e in ex]  # ragged drops + compaction == one row alone
    assert one == out


def test_reinject_fires_at_boundaries_batched_equals_one_by_one(tiny_pair):
    probe = build(tiny_pair, "reinject")
    ch = frequent_char(probe, data(3))
    m = build(tiny_pair, "reinject", reinject={"states": 2, "boundary": ch})
    ex = data(3)
    dec = DecodingConfig(max_new_tokens=24)
    out = m.generate(ex, dec)
    fires = m.last_stats["fires"]
    bnd = set(m.boundary)
    for i, comps in enumerate(out):  # one firing per boundary token generated (the last token never feeds)
        ids = m.llm.tok.encode(comps[0], add_special_tokens=False)
        n_b = sum(t in bnd for t in ids)
        assert fires[i] in (n_b, n_b - 1) and (n_b == 0 or fires[i] > 0)
    assert sum(fires) > 0
    one = [m.generate([e], dec)[0] for e in ex]
    assert one == out
    assert [c[0].tokens for c in one] == [c[0].tokens for c in out]


@pytest.mark.parametrize("name", ["lightthinker", "softcot-lightthinker", "reinject"])
def test_teacher_forcing_equals_decoding(tiny_pair, name):
    """Training sees what decoding sees: under the teacher-forced pass on the model's own greedy
    output (boundaries firing, steps dropped), every generated token is the argmax."""
    m = build(tiny_pair, name, lightthinker={"gist_tokens": 2}, reinject={"states": 2})
    with torch.no_grad():
        for n, p in m.llm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
        ex = data(3)
        m.boundary = boundary_ids(m.llm.tok, frequent_char(m, ex), m.llm.stop_ids)  # a boundary that fires
        n = m.thought_count()
        m.generate(ex, DecodingConfig(max_new_tokens=20), n)
        assert sum(m.last_stats["fires"]) > 0
        stop = set(m.llm.stop_ids)
        replies = []
        for row in m.last_ids.tolist():
            cut = next((i + 1 for i, t in enumerate(row) if t in stop), len(row))
            replies.append(row[:cut])
        if name != "reinject":
            logits, targets = m.teacher_forced(ex, n, 1024, replies)
        else:
            logits, targets = m.teacher_forced(ex, replies)
    assert sorted(targets.tolist()) == sorted(t for r in replies for t in r)  # (reinject: segment-major order)
    chosen = logits.gather(1, targets[:, None])[:, 0]
    assert (chosen >= logits.max(1).values - 1e-4).all()
