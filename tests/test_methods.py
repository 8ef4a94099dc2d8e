"""Every method behind the one interface: training through the shared loop, exactly the intended
gradients, save/load round trips, and each method's own promise (Coconut's cached thought loop,
SoftCoT++'s chains, Assist-CoT's hints, prompt tuning's static thoughts, parameter counts)."""
import json

import pytest
import torch
from safetensors.torch import load_file

from softcot.config import DecodingConfig, ModelConfig, TrainConfig, from_dict
from softcot.data import Example
from softcot.methods import METHODS, build_method, load_method
from softcot.methods.coconut import stage_target
from softcot.methods.softcot_pp import chain_contrastive
from softcot.train import train
from softcot.utils import count_parameters

N = 3  # thoughts in these tests
LLM_PARAMS = 25_248  # tiny Llama (hidden 32, 2 layers, untied head)
ASSISTANT_PARAMS = 13_008  # tiny Qwen2 (hidden 24, 2 layers, tied embeddings)
LORA_PARAMS = 2 * (2 * (8 * 32 + 32 * 8) + 2 * (8 * 32 + 16 * 8))  # r=8 on q,o (32->32) and k,v (32->16)


def data(n=4):
    return [
        Example(id=f"m{i}", task="gsm8k", question=f"Kim has {i} cats{' and dogs' * (i % 3)}. How many pets?",
                answer=str(2 * i + 2), steps=[f"{i} + {i} = {2 * i}", f"{2 * i} + 2 = {2 * i + 2}", "so done"])
        for i in range(n)
    ]


def build(tiny_pair, name, **kw):
    a, l = tiny_pair
    torch.manual_seed(0)
    base = dict(method=name, assistant=a, llm=l, n_thoughts=N, projection_norm="none", num_chains=3, prompt_tokens=N, hint_tokens=12,
                coconut_thoughts_per_step=2, coconut_max_stages=2, coconut_stage=1)
    base.update(kw)
    return build_method(from_dict(ModelConfig, base), "cpu")


def tcfg(out, **kw):
    base = dict(output_dir=str(out), train_n_thoughts=N, max_steps=2, batch_size=2, lr=1e-2, dev_fraction=0,
                warmup_ratio=0, max_length=256, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def frozen_models(m):
    return [m.llm.model] + ([m.assistant.model] if m.assistant is not None else [])


def test_registry_names():
    assert set(METHODS) == {"zero-shot-cot", "softcot", "cot-unk", "assist-cot", "lora", "coconut",
                            "softcot-pp", "prompt-tuning", "softcot-qfree", "lightthinker", "softcot-lightthinker",
                            "reinject"}


@pytest.mark.parametrize("name", ["softcot", "softcot-pp", "prompt-tuning", "lora", "coconut"])
def test_train_gradients_and_round_trip(tiny_pair, tmp_path, name):
    m = build(tiny_pair, name)
    ex = data(4)
    if name == "coconut":
        summary = train(m, tcfg(tmp_path, max_steps=1), ex, [])
        assert m.stage == 2 and (tmp_path / "stage0").is_dir() and (tmp_path / "stage2").is_dir()
    else:
        summary = train(m, tcfg(tmp_path), ex)
    assert summary["trainable"] == m.parameter_report()["trainable"] > 0
    # exactly the intended parameters get gradients, and all of them do (LoRA B is no longer 0)
    loss = m.loss(ex[:2], N, 256)
    loss.backward()
    assert torch.isfinite(loss)
    mine = {id(p) for p in m.trainable_parameters()}
    for p in m.trainable_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0 and p.dtype == torch.float32
    for model in frozen_models(m):
        assert all(p.grad is None and not p.requires_grad for p in model.parameters() if id(p) not in mine)
    # the resume state holds the trainable tensors only (LoRA: no base weights), and no pickle
    run_dir = tmp_path / "stage2" if name == "coconut" else tmp_path
    state_dir = run_dir / json.loads((run_dir / "train_state.json").read_text())["dir"]
    tensors = load_file(state_dir / "tensors.safetensors")
    trainable = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("trainable/")}
    assert set(trainable) == set(m.trainable_state_dict())
    assert count_parameters(trainable.values()) == summary["trainable"]
    assert not list(run_dir.rglob("*.pt")) and not list(run_dir.rglob("*.pkl"))
    # save/load round trip: same generation inputs, same loss, same completions
    loaded = load_method(tmp_path, device="cpu")
    assert loaded.name == name and getattr(loaded, "stage", None) == getattr(m, "stage", None)
    with torch.no_grad():
        e1, k1 = m.generation_inputs(ex, N)
        e2, k2 = loaded.generation_inputs(ex, N)
        torch.testing.assert_close(e1, e2, rtol=0, atol=0)
        assert torch.equal(k1, k2)
        assert float(m.loss(ex, N, 256)) == float(loaded.loss(ex, N, 256))
    dec = DecodingConfig(max_new_tokens=6)
    assert m.generate(ex, dec) == loaded.generate(ex, dec)


def test_lora_checkpoint_is_a_peft_adapter(tiny_pair, tmp_path):
    m = build(tiny_pair, "lora")
    train(m, tcfg(tmp_path, max_steps=1), data(2))
    names = {p.name for p in tmp_path.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "softcot_config.json"} <= names
    sd = load_file(tmp_path / "adapter_model.safetensors")
    assert sd and all("lora_" in k for k in sd) and count_parameters(sd.values()) == LORA_PARAMS
    assert json.loads((tmp_path / "adapter_config.json").read_text())["r"] == 8
    state_dir = tmp_path / json.loads((tmp_path / "train_state.json").read_text())["dir"]
    trainable = [k for k in load_file(state_dir / "tensors.safetensors") if k.startswith("trainable/")]
    assert trainable and all("lora_" in k for k in trainable)


def test_parameter_reports(tiny_pair):
    expect = {
        "zero-shot-cot": (0, LLM_PARAMS),
        "cot-unk": (0, LLM_PARAMS),
        "assist-cot": (0, LLM_PARAMS + ASSISTANT_PARAMS),
        "softcot": (24 * 32 + 32, LLM_PARAMS + ASSISTANT_PARAMS),
        "softcot-pp": (24 * 32 + 32 + 3 * 24, LLM_PARAMS + ASSISTANT_PARAMS),
        "prompt-tuning": (N * 32, LLM_PARAMS),
        "lora": (LORA_PARAMS, LLM_PARAMS),
        "coconut": (LORA_PARAMS, LLM_PARAMS),
    }
    for name, (trainable, frozen) in expect.items():
        r = build(tiny_pair, name).parameter_report()
        assert (r["trainable"], r["total"]) == (trainable, frozen + trainable), name


# ---- Coconut ---------------------------------------------------------------------------------
@pytest.fixture
def coconut(tiny_pair):
    m = build(tiny_pair, "coconut", coconut_thoughts_per_step=3)  # stage 1: 3 continuous thoughts
    with torch.no_grad():  # LoRA B starts at 0: make the adapters matter
        for n, p in m.peft.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.2)
    return m


def hand_thoughts(m, ex):
    """The continuous-thought loop written out: no cache, no padding, full recompute per step."""
    ids = torch.tensor([m.llm.tok.encode(m.llm.prompt_texts([ex], None)[0] + m.llm.begin, add_special_tokens=False)])
    seq = m.llm.embed(ids)
    for _ in range(m.n_latent):
        h = m.llm.model(inputs_embeds=seq, output_hidden_states=True).hidden_states[-1][:, -1:]
        seq = torch.cat([seq, h], 1)
    return seq, ids.shape[1]


@torch.no_grad()
def test_coconut_cached_feedback_equals_hand_loop(coconut):
    m, ex = coconut, data(3)  # three prompt lengths: left padding in the batch
    ids, mask = m.prefix(ex)
    assert (mask == 0).any()
    cache, mask2, nxt, thoughts = m.think(ids, mask, m.n_latent)
    assert thoughts.shape == (3, 3, 32) and mask2.shape[1] == ids.shape[1] + 3
    end = torch.tensor(m.end_ids()).expand(3, -1)
    h, _, _ = m.continue_with(end, torch.ones_like(end), cache, mask2, nxt)
    logits = m.llm.model.get_output_embeddings()(h[:, -1])
    for b, e in enumerate(ex):
        seq, T = hand_thoughts(m, e)
        torch.testing.assert_close(thoughts[b], seq[0, T:], atol=1e-5, rtol=1e-4)
        full = torch.cat([seq, m.llm.embed(end[:1])], 1)
        torch.testing.assert_close(logits[b], m.llm.model(inputs_embeds=full).logits[0, -1], atol=1e-4, rtol=1e-4)


def test_coconut_loss_equals_uncached_sequence(coconut):
    m, ex = coconut, data(2)
    got = m.loss(ex, max_length=256)
    total, count = 0.0, 0
    with torch.no_grad():
        for e in ex:
            seq, _ = hand_thoughts(m, e)
            end = m.end_ids()
            reply = m.llm.tok.encode(stage_target(e, 1) + m.llm.eot_text, add_special_tokens=False)
            full = torch.cat([seq, m.llm.embed(torch.tensor([end + reply]))], 1)
            logits = m.llm.model(inputs_embeds=full).logits[0]
            L = len(reply)
            pred = logits[-L - 1 : -1]  # the last end-marker position predicts the first reply token
            total += float(torch.nn.functional.cross_entropy(pred, torch.tensor(reply), reduction="sum"))
            count += L
    assert float(got.detach()) == pytest.approx(total / count, rel=1e-5)
    got.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.trainable_parameters())


@torch.no_grad()
def test_coconut_batched_generation_equals_one_by_one_and_hf_generate(coconut):
    m, ex = coconut, data(4)
    dec = DecodingConfig(max_new_tokens=10)
    batched = m.generate(ex, dec)
    assert batched == [m.generate([e], dec)[0] for e in ex]
    embeds, mask = m.generation_inputs(ex, N)  # prompt + thoughts + end marker, no cache
    assert batched == m.llm.generate(embeds, mask, dec)
    forced = m.generate(ex, DecodingConfig(max_new_tokens=5, min_new_tokens=5, do_sample=True, num_samples=2))
    assert all(len(c) == 2 for c in forced)


def test_coconut_curriculum_targets():
    ex = data(1)[0]
    full = stage_target(ex, 0)
    assert full.startswith("## Step 1:") and full.endswith("\\boxed{2}.")
    one = stage_target(ex, 1)
    assert one.startswith("## Step 2:") and full.endswith(one)
    assert stage_target(ex, 5) == "The answer is \\boxed{2}."


def test_coconut_curriculum_rerun_resumes(tiny_pair, tmp_path):
    cfg = tcfg(tmp_path, max_steps=1)
    first = build(tiny_pair, "coconut", coconut_max_stages=1)
    train(first, cfg, data(4), [])
    again = build(tiny_pair, "coconut", coconut_max_stages=1)  # a new process after the run ended
    summaries = train(again, cfg, data(4), [])["phases"]
    assert [s["steps"] for s in summaries] == [1, 1]
    a, b = first.trainable_state_dict(), again.trainable_state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # finished stages reload, nothing retrains
    assert load_method(tmp_path, device="cpu").stage == 1


def test_coconut_stage_sets_thought_count(coconut):
    assert coconut.n_latent == 3
    coconut.enter_phase(2)
    assert coconut.n_latent == 6 and coconut.thought_count(1) == 6 and coconut.saved_config().coconut.stage == 2
    assert coconut.prompt_texts(data(1), N)[0].count(coconut.llm.placeholder) == 6
    with pytest.raises(ValueError, match="coconut stage"):
        coconut.enter_phase(3)


# ---- SoftCoT++ --------------------------------------------------------------------------------
def test_softcot_pp_chains(tiny_pair):
    m = build(tiny_pair, "softcot-pp")
    ex = data(4)
    with torch.no_grad():
        t = m.thoughts(ex, N).view(4, 3, N, -1)  # [B, K, N, d_llm]
    for i in range(3):
        for j in range(i + 1, 3):
            assert (t[:, i] - t[:, j]).abs().amax() > 1e-3  # each chain thinks differently
    loss = m.loss(ex, N, 256)  # batch 4 (the reference crashes above 1)
    assert torch.isfinite(loss)
    loss.backward()
    assert (m.trainable.ini.grad.abs().sum(-1) > 0).all()  # every [INI]_k is reached
    # the contrastive term is a per-question mean: batch 4 equals the mean over questions
    z = torch.randn(4, 3, N, 32)
    per = torch.stack([chain_contrastive(z[b : b + 1], 0.1) for b in range(4)])
    torch.testing.assert_close(chain_contrastive(z, 0.1), per.mean())
    out = m.generate(ex[:2], DecodingConfig(max_new_tokens=4, do_sample=True, num_samples=2))
    assert [len(c) for c in out] == [6, 6] and m.num_chains == 3


# ---- training-free and static methods -----------------------------------------------------------
@torch.no_grad()
def test_assist_cot_prompt_holds_the_hint(tiny_pair):
    m = build(tiny_pair, "assist-cot")
    ex = data(2)
    hints = m.assistant.write_hints(ex, max_new_tokens=12)
    assert all(hints)
    for hint, prompt in zip(hints, m.prompt_texts(ex, N)):
        assert f"{m.llm.begin}{hint}{m.llm.end}" in prompt
    m.llm.block = "slots"
    for e, hint, prompt in zip(ex, hints, m.prompt_texts(ex, N)):
        assert f"{e.question}\n{hint}" in prompt  # the slots-only block: the hint right after the question
    embeds, mask = m.generation_inputs(ex, N)
    ids, _ = m.llm.encode_prompts(m.prompt_texts(ex, N))
    torch.testing.assert_close(embeds, m.llm.embed(ids))
    assert len(m.generate(ex, DecodingConfig(max_new_tokens=4))) == 2


@torch.no_grad()
def test_prompt_tuning_thoughts_are_the_same_for_every_question(tiny_pair):
    m = build(tiny_pair, "prompt-tuning")
    ex = data(3)
    embeds, mask = m.generation_inputs(ex, N)
    ids, _ = m.llm.encode_prompts(m.prompt_texts(ex, N))
    slots = embeds[m.llm.slot_mask(ids, mask, N)].view(3, N, -1)
    assert torch.equal(slots[0], slots[1]) and torch.equal(slots[0], slots[2])
    assert torch.equal(slots[0], m.trainable.prompt)
    with pytest.raises(ValueError, match="prompt_tuning.tokens"):
        m.generation_inputs(ex, N + 1)


@torch.no_grad()
def test_cot_unk_keeps_the_placeholder_embedding(tiny_pair):
    m = build(tiny_pair, "cot-unk")
    ex = data(2)
    embeds, mask = m.generation_inputs(ex, N)
    ids, _ = m.llm.encode_prompts(m.prompt_texts(ex, N))
    slots = embeds[m.llm.slot_mask(ids, mask, N)]
    table = m.llm.model.get_input_embeddings().weight
    assert torch.equal(slots, table[m.llm.placeholder_id].expand(2 * N, -1))
    assert not m.trains
