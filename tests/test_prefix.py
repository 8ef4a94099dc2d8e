"""Prompt-prefix reuse (softcot.prefix): the shared prompt start is computed once, and nothing a
method predicts changes."""
import pytest
import torch

from softcot.config import DecodingConfig
from softcot.evaluate import EvalConfig, evaluate
from softcot.methods import METHODS
from softcot.prefix import PrefixReuse, full_attention_cache, reusing
from tests.test_methods import build, data


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_predicts_the_same_with_prefix_reuse(tiny_pair, tmp_path, name):
    """Greedy evaluation with and without reuse: byte-identical predictions; batches of 2 and of 1
    (batch 1 reuses what the previous call shared with it)."""
    m = build(tiny_pair, name)
    with torch.no_grad():  # random but non-zero trainable parts (LoRA B starts at 0)
        for p in m.trainable_parameters():
            p.add_(0.05 * torch.randn_like(p))
    dec = DecodingConfig(max_new_tokens=6)
    for bs in (2, 1):
        runs = {}
        for on in (True, False):
            cfg = EvalConfig(task="gsm8k", seeds=[41], batch_size=bs, output_dir=str(tmp_path / f"{bs}{on}"), prefix_cache=on)
            evaluate(m, data(4), cfg, dec)
            runs[on] = (tmp_path / f"{bs}{on}" / "predictions.jsonl").read_text()
        assert runs[True] == runs[False]


def test_prefix_is_computed_once_and_stops_before_the_thoughts(tiny_pair):
    m = build(tiny_pair, "softcot")
    dec = DecodingConfig(max_new_tokens=4)
    ex = data(4)
    with torch.no_grad(), m.reusing_prefix():
        first = m.generate(ex[:2], dec)
        llm, asst = m.llm.prefix, m.assistant.prefix
        assert len(llm.entries) == 1 and len(asst.entries) == 1 and llm.reused_tokens > 0 and asst.reused_tokens > 0
        m.generate(ex[2:3], dec)  # batch 1: the remembered prefix serves it, nothing new is computed
        assert len(llm.entries) == 1 and len(asst.entries) == 1
        (k_llm, _), = llm.entries.values()
        (k_asst, _), = asst.entries.values()
    # the prefix ends where the questions start to differ, before any thought slot
    prompt = m.llm.tok.encode(m.prompt_texts(ex[:1], 3)[0], add_special_tokens=False)
    assert k_llm.shape[0] < prompt.index(m.llm.placeholder_id)
    assert 0 < k_asst.shape[0] < m.assistant.encode(m.assistant.prompts(ex[:1], 3), "right")[0][0].tolist().index(
        m.assistant.placeholder_id)
    assert first == m.generate(ex[:2], dec)


def test_question_free_prompts_never_share_the_thoughts(tiny_pair):
    """softcot-qfree: the thoughts follow the instruction directly; they differ per question, so
    the prefix ends before them even though the token ids at the slots are identical."""
    m = build(tiny_pair, "softcot-qfree")
    with torch.no_grad(), m.reusing_prefix():
        out = m.generate(data(3), DecodingConfig(max_new_tokens=4))
        (prefix, _), = m.llm.prefix.entries.values()
    ids = m.llm.tok.encode(m.prompt_texts(data(1), m.thought_count())[0], add_special_tokens=False)
    assert prefix.shape[0] <= ids.index(m.llm.placeholder_id)
    assert out == m.generate(data(3), DecodingConfig(max_new_tokens=4))


def test_sampled_generation_with_several_samples_is_unchanged(tiny_pair):
    m = build(tiny_pair, "softcot-pp")  # 3 chains per question, 2 samples each: 12 rows from 2 questions
    dec = DecodingConfig(max_new_tokens=5, do_sample=True, temperature=1.0, num_samples=2)
    with torch.no_grad():
        torch.manual_seed(3)
        plain = m.generate(data(2), dec)
        with m.reusing_prefix():
            torch.manual_seed(3)
            reused = m.generate(data(2), dec)
            assert m.llm.prefix.reused_tokens > 0
    assert reused == plain and all(len(c) == 6 for c in reused)


def test_models_with_other_attention_layers_are_left_alone():
    """A sliding-window model's cache cannot be broadcast as is: reuse switches itself off."""
    from transformers import MistralConfig, MistralForCausalLM

    model = MistralForCausalLM(MistralConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=1, sliding_window=4))
    assert full_attention_cache(model) is None
    reuse = PrefixReuse(model)
    embeds, mask = torch.randn(2, 12, 16), torch.ones(2, 12, dtype=torch.long)
    assert not reuse.enabled and reuse.prepare(embeds, mask) == (mask, {})


def test_llm_logits_and_assistant_thoughts_equal_full_prefill(tiny_pair):
    """Numbers, not just greedy text: the LLM's next-token logits after the rearranged prompt and
    the assistant's slot states (SoftCoT++'s filled slots too) match a full prefill."""
    m = build(tiny_pair, "softcot-pp")
    ex = data(3)
    with torch.no_grad():
        embeds, mask = m.generation_inputs(ex, 3)  # [R, T, d], left padded, R = 3 chains x 3
        full = m.llm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0)).logits[:, -1]
        fill = torch.randn(3, m.assistant.hidden_size)
        ref_thoughts = m.assistant.soft_thoughts(ex, 3, fill=fill, repeat=3)
        reuse = PrefixReuse(m.llm.model)
        reuse.prepare(embeds[:2], mask[:2])  # an earlier batch: the prefix is found and remembered
        moved_mask, kw = reuse.prepare(embeds, mask)
        k = kw["cache"].get_seq_length()
        assert k >= 8 and bool((moved_mask[:, :k] == 1).all())
        pos = moved_mask.cumsum(1) - 1  # what generate derives from the mask
        got = m.llm.model(inputs_embeds=embeds[:, k:], attention_mask=moved_mask, position_ids=pos[:, k:], **kw).logits[:, -1]
        with reusing(m.assistant):
            m.assistant.soft_thoughts(ex[:2], 3)
            thoughts = m.assistant.soft_thoughts(ex, 3, fill=fill, repeat=3)
            assert m.assistant.prefix.reused_tokens > 0
    torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(thoughts, ref_thoughts, atol=1e-5, rtol=1e-5)
