"""The core: slots, splice, gradients, save/load, batched generation, gradient checkpointing."""
import json

import pytest
import torch

from softcot.config import DecodingConfig, ProjectionConfig, SoftCoTConfig
from softcot.data import Example
from softcot.errors import CheckpointError, ConfigError, ModelLoadError
from softcot.methods import build_method, load_method
from softcot.prompts import render_prompt

QUESTIONS = [
    "Tom has 3 apples and buys 4 more. How many apples does he have?",
    "A box holds 12 pens. How many pens are in 3 boxes?",
    "Ann had 20 dollars and spent 7. How much is left?",
    "Sam reads 5 pages a day. How many pages in a week?",
]


def examples(n=4, task="gsm8k"):
    return [
        Example(id=f"ex{i}", task=task, question=QUESTIONS[i % 4], answer=str(i + 7),
                steps=[f"{i} + 7 = {i + 7}"])
        for i in range(n)
    ]


@pytest.fixture
def method(tiny_pair):
    a, l = tiny_pair
    torch.manual_seed(0)
    # norm 'none': the pinned values were recorded before 'match' became the default
    return build_method(SoftCoTConfig(assistant=a, llm=l, n_thoughts=3, projection=ProjectionConfig(norm="none")), device="cpu")


def test_different_pair_dimensions(method):
    assert method.assistant.hidden_size == 24 and method.llm.hidden_size == 32
    assert method.projection.net.weight.shape == (32, 24)
    assert method.assistant.placeholder == "<|fim_pad|>"
    assert method.llm.placeholder == "<|reserved_special_token_0|>"


def test_soft_thoughts_are_hidden_states_at_slots(method):
    ex = examples(2)
    got = method.assistant.soft_thoughts(ex, 3)  # [2, 3, 24]
    assert got.shape == (2, 3, 24)
    # Hand computation, one example at a time, through the full model's last hidden state.
    tok, model = method.assistant.tok, method.assistant.model
    for b, e in enumerate(ex):
        text = method.assistant.prompts([e], 3)[0]
        ids = torch.tensor([tok.encode(text, add_special_tokens=False)])
        h = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
        pos = (ids[0] == method.assistant.placeholder_id).nonzero().flatten()
        assert len(pos) == 3
        torch.testing.assert_close(got[b], h[pos], atol=1e-5, rtol=1e-4)


def test_assistant_stops_at_the_last_slot(method):
    """The template's end of turn after the slots cannot change them (causal): not computed."""
    asst, seen = method.assistant, []
    hook = asst.model.base_model.register_forward_pre_hook(lambda mod, args, kw: seen.append(kw["input_ids"].shape[1]),
                                                            with_kwargs=True)
    try:
        asst.soft_thoughts(examples(1), 3)
    finally:
        hook.remove()
    ids = asst.tok.encode(asst.prompts(examples(1), 3)[0], add_special_tokens=False)
    last = max(i for i, t in enumerate(ids) if t == asst.placeholder_id)
    assert last < len(ids) - 1 and seen == [last + 1]


def test_multi_seed_eval_computes_thoughts_once_and_predicts_the_same(method, tmp_path, monkeypatch):
    """Sampling under 3 seeds: the assistant runs once per batch (not once per seed), and the
    predictions equal those of an evaluation that recomputes the thoughts every time."""
    import softcot.evaluate as ev

    calls = []
    real = type(method.assistant).soft_thoughts
    monkeypatch.setattr(type(method.assistant), "soft_thoughts",
                        lambda self, exs, n, **kw: calls.append(len(exs)) or real(self, exs, n, **kw))
    dec = DecodingConfig(max_new_tokens=4, do_sample=True, temperature=1.0)
    ecfg = dict(task="gsm8k", seeds=[41, 42, 43], batch_size=2)
    ev.evaluate(method, examples(4), ev.EvalConfig(output_dir=str(tmp_path / "cached"), **ecfg), dec)
    assert calls == [2, 2]  # 2 batches, once each
    monkeypatch.setattr(ev, "ThoughtCache", lambda assistant: None)  # recompute under every seed
    calls.clear()
    ev.evaluate(method, examples(4), ev.EvalConfig(output_dir=str(tmp_path / "fresh"), **ecfg), dec)
    assert calls == [2, 2] * 3
    assert (tmp_path / "cached/predictions.jsonl").read_text() == (tmp_path / "fresh/predictions.jsonl").read_text()


def test_splice_equals_hand_computed(method):
    ex = examples(3)
    n = 3
    texts = method.llm.prompt_texts(ex, method.llm.slots(n))
    ids, mask = method.llm.encode_prompts(texts)  # left padded
    thoughts = torch.randn(3, n, 32)
    got = method.llm.splice(method.llm.embed(ids), ids, mask, thoughts)
    table = method.llm.model.get_input_embeddings().weight
    for b in range(3):
        k = 0
        for t in range(ids.shape[1]):
            if mask[b, t] and ids[b, t] == method.llm.placeholder_id:
                want = thoughts[b, k]
                k += 1
            else:
                want = table[ids[b, t]]
            torch.testing.assert_close(got[b, t], want)
        assert k == n


def test_placeholder_slots_found_by_id_in_the_rendered_template(method):
    text = method.llm.prompt_texts(examples(1), method.llm.slots(5))[0]
    assert text.endswith("<|start|>assistant\n")  # generation header present
    assert text.count(method.llm.placeholder) == 5
    assert method.llm.begin + method.llm.placeholder * 5 + method.llm.end in text
    method.llm.block = "slots"
    text = method.llm.prompt_texts(examples(1), method.llm.slots(5))[0]
    assert examples(1)[0].question + "\n" + method.llm.placeholder * 5 + "<|" in text


def test_only_projection_receives_gradients(method):
    loss = method.loss(examples(2), n_thoughts=4)
    loss.backward()
    assert torch.isfinite(loss)
    for p in method.projection.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0
    for model in (method.llm.model, method.assistant.model):
        assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert method.projection.net.weight.dtype == torch.float32


def test_loss_is_only_on_the_reply(method):
    ex = examples(2)
    texts = method.llm.prompt_texts(ex, method.llm.slots(2))
    ids, mask, labels = method.llm.encode_train(texts, ["abc", "de"], max_length=4096)
    for b, text in enumerate(texts):
        n_prompt = len(method.llm.tok.encode(text, add_special_tokens=False))
        assert (labels[b, :n_prompt] == -100).all()
        reply = labels[b][labels[b] != -100].tolist()
        assert method.llm.tok.decode(reply) == ["abc", "de"][b] + "<|eot|>"
    assert (labels[mask == 0] == -100).all()


def test_train_and_test_n_thoughts_may_differ(method):
    assert torch.isfinite(method.loss(examples(2), n_thoughts=8))
    out = method.generate(examples(2), DecodingConfig(max_new_tokens=3), n_thoughts=2)
    assert len(out) == 2 and all(len(c) == 1 for c in out)


def test_batched_left_padded_generation_equals_one_by_one(method):
    ex = examples(4)
    dec = DecodingConfig(max_new_tokens=12)
    batched = method.generate(ex, dec)
    single = [method.generate([e], dec)[0] for e in ex]
    assert batched == single
    plain = build_method(SoftCoTConfig(method="zero-shot-cot", llm=method.cfg.llm), "cpu",
                         models={"llm": (method.llm.model, method.llm.tok)})
    assert plain.generate(ex, dec) == [plain.generate([e], dec)[0] for e in ex]


def test_sampling_returns_k_samples_and_is_seeded(method):
    dec = DecodingConfig(max_new_tokens=6, do_sample=True, temperature=1.0, top_k=20, num_samples=3)
    torch.manual_seed(5)
    a = method.generate(examples(2), dec)
    torch.manual_seed(5)
    b = method.generate(examples(2), dec)
    assert a == b and all(len(c) == 3 for c in a)


def test_save_load_round_trip_writes_only_the_projection(method, tmp_path):
    with torch.no_grad():
        method.projection.net.weight.normal_()
    method.save(tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["projection.safetensors", "softcot_config.json"]
    from safetensors.torch import load_file

    assert set(load_file(tmp_path / "projection.safetensors")) == {"net.weight", "net.bias"}
    assert (tmp_path / "projection.safetensors").stat().st_size < 10_000  # no LM weights
    cfg = json.loads((tmp_path / "softcot_config.json").read_text())
    assert cfg["assistant"] == method.cfg.assistant and cfg["llm"] == method.cfg.llm
    loaded = load_method(tmp_path, device="cpu")
    ex = examples(2)
    e1, _ = method.generation_inputs(ex, 3)
    e2, _ = loaded.generation_inputs(ex, 3)
    torch.testing.assert_close(e1, e2, rtol=0, atol=0)
    dec = DecodingConfig(max_new_tokens=8)
    assert method.generate(ex, dec) == loaded.generate(ex, dec)


def test_checkpoint_saved_before_a_setting_existed_keeps_its_behaviour(method, tmp_path, monkeypatch):
    """A checkpoint config without a setting (written before it existed) loads with the value it
    was trained under (LEGACY_VALUES), even where that is not today's default."""
    import softcot.config as config

    method.save(tmp_path)
    cfg = json.loads((tmp_path / "softcot_config.json").read_text())
    del cfg["thought_block"], cfg["attn_implementation"]
    (tmp_path / "softcot_config.json").write_text(json.dumps(cfg))
    assert load_method(tmp_path, device="cpu").cfg.thought_block == "preamble"
    # were the block's old value not today's default, the old checkpoint would still get it
    monkeypatch.setitem(config.LEGACY_VALUES, "method", {"thought_block": "slots"})
    loaded = load_method(tmp_path, device="cpu")
    assert config.ModelConfig().thought_block == "preamble" and loaded.llm.block == "slots"
    assert loaded.prompt_texts(examples(1), 3)[0].count(loaded.llm.begin) == 0


def test_checkpoint_for_another_pair_is_rejected(method, tmp_path):
    from safetensors.torch import save_file

    method.save(tmp_path)
    save_file({"net.weight": torch.zeros(32, 16), "net.bias": torch.zeros(32)}, tmp_path / "projection.safetensors")
    with pytest.raises(CheckpointError, match=r"net.weight has shape \(32, 16\), expected \(32, 24\)"):
        load_method(tmp_path, device="cpu")


def test_reference_projection_import(method, tmp_path):
    w, b = torch.randn(32, 24), torch.randn(32)
    torch.save({"weight": w, "bias": b}, tmp_path / "projection.bin")
    method.load_reference(tmp_path / "projection.bin")
    torch.testing.assert_close(method.projection.net.weight, w)
    torch.save({"weight": torch.randn(32, 20), "bias": b}, tmp_path / "bad.bin")
    with pytest.raises(CheckpointError, match="expected \\(32, 24\\)"):
        method.load_reference(tmp_path / "bad.bin")


def test_gradient_checkpointing_gives_the_same_gradient(method):
    ex = examples(2)
    method.loss(ex, 3).backward()
    g1 = method.projection.net.weight.grad.clone()
    method.projection.zero_grad(set_to_none=True)
    method.llm.enable_gradient_checkpointing()
    method.loss(ex, 3).backward()
    torch.testing.assert_close(method.projection.net.weight.grad, g1)
    assert not method.llm.model.training


def test_projection_variants(tiny_pair):
    a, l = tiny_pair
    for kind, norm in (("mlp", "none"), ("linear", "layernorm"), ("linear", "match")):
        m = build_method(SoftCoTConfig(assistant=a, llm=l, projection=ProjectionConfig(kind=kind, norm=norm)), "cpu")
        y = m.thoughts(examples(2), 3)
        assert y.shape == (2, 3, 32) and y.dtype == torch.float32
        if norm == "match":  # output RMS equals the LLM's embedding RMS at init
            rms = y.pow(2).mean(-1).sqrt()
            torch.testing.assert_close(rms, torch.full_like(rms, float(m.projection.target_rms)), rtol=1e-3, atol=1e-4)


def test_bad_inputs(tiny_pair, tmp_path):
    a, l = tiny_pair
    with pytest.raises(ModelLoadError, match="not found or has no config.json"):
        build_method(SoftCoTConfig(assistant=a, llm=str(tmp_path / "nope")), "cpu")
    with pytest.raises(ConfigError, match="n_thoughts must be >= 1"):
        SoftCoTConfig(assistant=a, llm=l, n_thoughts=0)
    with pytest.raises(ConfigError, match="not a single token of the llm tokenizer"):
        build_method(SoftCoTConfig(assistant=a, llm=l, llm_placeholder="<nope>"), "cpu")


def test_prompt_is_stable_with_date_templates(tiny_pair):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_pair[1])
    tok.chat_template = "{{ date_string }}|{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert render_prompt(tok, "q") == "26 Jul 2024|q"


def test_plain_fallback_without_chat_template(tiny_pair):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_pair[1])
    tok.chat_template = None
    assert render_prompt(tok, "hello") == "User: hello\nAssistant:"


def test_assistant_hints_batched_equal_one_by_one(method):
    ex = examples(4)
    batched = method.assistant.write_hints(ex, max_new_tokens=8)
    assert batched == [method.assistant.write_hints([e], max_new_tokens=8)[0] for e in ex]


def test_attention_implementation_is_chosen_and_changes_only_float_noise(tiny_pair):
    a, l = tiny_pair
    ms = {}
    for attn in ("sdpa", "eager"):
        torch.manual_seed(0)
        ms[attn] = build_method(SoftCoTConfig(assistant=a, llm=l, n_thoughts=3, attn_implementation=attn), device="cpu")
        assert ms[attn].llm.model.config._attn_implementation == attn
        assert ms[attn].assistant.model.config._attn_implementation == attn
    with torch.no_grad():
        losses = [float(m.loss(examples(3))) for m in ms.values()]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    with pytest.raises(ValueError, match="attn_implementation"):
        SoftCoTConfig(attn_implementation="flash")


def test_lm_head_reads_a_contiguous_input(method):
    """transformers hands the head hidden[:, -1:] (not contiguous for B > 1); a frozen weight then
    takes torch's expand+bmm path, which copies the weight per row on CPU. FrozenLLM fixes the input."""
    from softcot.frozen import contiguous_lm_head

    head, seen = method.llm.model.get_output_embeddings(), []
    probe = head.register_forward_pre_hook(lambda mod, args: seen.append(args[0].is_contiguous()))
    try:
        method.generate(examples(3), DecodingConfig(max_new_tokens=2))
        assert seen and all(seen)
        head._forward_pre_hooks.clear()  # without the fix the prefill's input is a strided slice
        head.register_forward_pre_hook(lambda mod, args: seen.append(args[0].is_contiguous()))
        seen.clear()
        method.generate(examples(3), DecodingConfig(max_new_tokens=2))
        assert seen[0] is False
    finally:
        head._forward_pre_hooks.clear()
        head._softcot_contiguous = False
        contiguous_lm_head(method.llm.model)
        probe.remove()
