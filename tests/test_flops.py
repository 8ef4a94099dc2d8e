"""FLOPs counted from each model's config and the positions it processed agree with torch's own
FlopCounterMode, for every method's generation (assistant passes, Coconut's continuous thoughts,
SoftCoT++'s chains, the step-wise decoders' extra passes) and a training loss. The models run
eager attention here: FlopCounterMode does not count torch's fused CPU attention kernel (with it,
only the linear maps would be compared)."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from softcot.config import DecodingConfig
from softcot.flops import FlopMeter
from softcot.methods import METHODS

from tests.test_methods import N, build, data


def counted(method, fn):
    models = {"llm": method.llm.model, "assistant": method.assistant.model if method.assistant is not None else None}
    # no_grad and frozen trainables: the same forward FLOPs, without FlopCounterMode's backward
    # tracking of trainable inputs (which fails on a parameter used as an input)
    for p in method.trainable_parameters():
        p.requires_grad_(False)
    with FlopMeter(models) as meter, FlopCounterMode(display=False) as ref, torch.no_grad():
        fn()
    ours = sum(v["flops"] for v in meter.totals().values())
    return ours, ref.get_total_flops(), meter.totals()


@pytest.mark.parametrize("name", sorted(METHODS))
def test_generation_flops_match_torch(tiny_pair, name):
    m = build(tiny_pair, name, attn_implementation="eager")
    dec = DecodingConfig(do_sample=False, max_new_tokens=6)
    ours, ref, per = counted(m, lambda: m.generate(data(3), dec, n_thoughts=N))
    assert ref > 0 and abs(ours - ref) / ref < 0.05, (name, ours, ref, per)
    assert per["llm"]["calls"] >= 2 and per["llm"]["peak_kv"] > 0


@pytest.mark.parametrize("name", ["softcot", "lora", "coconut"])
def test_training_loss_flops_match_torch(tiny_pair, name):
    m = build(tiny_pair, name, attn_implementation="eager")
    ours, ref, _ = counted(m, lambda: m.loss(data(2), N, 256))
    assert ref > 0 and abs(ours - ref) / ref < 0.05, (name, ours, ref)


@pytest.mark.parametrize("name", ["zero-shot-cot", "softcot"])
def test_evaluation_records_compute_per_question(tiny_pair, tmp_path, name):
    """metrics.json has each method's compute per question, and it adds up to what ran."""
    import json

    from softcot.config import EvalConfig
    from softcot.evaluate import cost_models, evaluate

    m = build(tiny_pair, name)
    ex = data(4)
    ecfg = EvalConfig(task="gsm8k", data_file="x", output_dir=str(tmp_path / "ev"), seeds=[41], batch_size=2,
                      n_thoughts=N, prefix_cache=False)
    with FlopMeter(cost_models(m)) as meter:
        metrics = evaluate(m, ex, ecfg, DecodingConfig(do_sample=False, max_new_tokens=5))
    c = json.loads((tmp_path / "ev" / "metrics.json").read_text())["cost_per_question"]
    assert c == metrics["cost_per_question"]
    total = sum(v["flops"] for v in meter.totals().values())
    assert abs(c["flops"] * len(ex) - total) / total < 1e-6
    assert (c["flops_assistant"] > 0) == (name == "softcot") and c["ms"] > 0 and c["peak_kv"] > 0
    assert c["flops"] == pytest.approx(c["flops_llm"] + c["flops_assistant"])
