"""softcot inside lm-evaluation-harness (softcot.harness): lm-eval's own GSM8K and ARC task
definitions (prompt, filters, metrics) on local files, run with the mini world's models through
the `softcot` lm-eval model; parity with `softcot eval`; loglikelihood checked against an
independent computation; chat rendering; bad model_args / tasks in one line before any model loads.

Skipped when lm-eval (the `softcot[lm-eval]` extra) is not installed.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

lm_eval = pytest.importorskip("lm_eval")

from softcot.config import DecodingConfig, EvalConfig, ModelConfig  # noqa: E402
from softcot.data import load_examples  # noqa: E402
from softcot.harness import chat, register  # noqa: E402
from softcot.harness.tasks import write_local_task  # noqa: E402
from softcot.miniworld import ASSISTANT_DIR, DATA_DIR, LLM_DIR  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "lm_eval"
GEN = {"max_gen_toks": 40}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Local lm-eval tasks (gsm8k.yaml and arc_easy.yaml with the data swapped) and a task manager
    that indexes only them (lm-eval's full index takes seconds and is not what is tested)."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("lm_eval")
    os.environ["HF_DATASETS_CACHE"] = str(root / "hf-cache")
    register()
    tasks = root / "tasks"
    test8 = root / "mini8.jsonl"
    test8.write_text("".join((DATA_DIR / "test.jsonl").read_text().splitlines(keepends=True)[:8]))
    write_local_task(tasks, "gsm8k_fx", "gsm8k/gsm8k.yaml", {"test": FIX / "gsm8k.jsonl", "train": FIX / "gsm8k.jsonl"})
    # the same task with softcot's question-only text: `softcot eval`'s prompt, for parity
    write_local_task(tasks, "gsm8k_q", "gsm8k/gsm8k.yaml", {"test": FIX / "gsm8k.jsonl", "train": FIX / "gsm8k.jsonl"},
                     doc_to_text="{{question}}")
    write_local_task(tasks, "mini_q", "gsm8k/gsm8k.yaml", {"test": test8}, doc_to_text="{{question}}")
    write_local_task(tasks, "arc_fx", "arc/arc_easy.yaml", {"test": FIX / "arc.jsonl"})
    from lm_eval.tasks import TaskManager

    return {"root": root, "tm": TaskManager(include_path=str(tasks), include_defaults=False), "mini8": test8}


def model(**kw):
    from softcot.harness.model import SoftCoTLM

    return SoftCoTLM(**{"device": "cpu", "batch_size": 4, **kw})


def run(world, lm, tasks, **kw):
    kw.setdefault("num_fewshot", 0)
    kw.setdefault("gen_kwargs", GEN)
    return lm_eval.simple_evaluate(model=lm, tasks=tasks, task_manager=world["tm"], log_samples=True,
                                   bootstrap_iters=0, **kw)


def responses(res, task):
    """doc_id -> [the model's raw responses] of one task's logged samples (one filter's copy)."""
    out = {}
    for s in res["samples"][task]:
        out[s["doc_id"]] = [r[0] for r in s["resps"]]
    return out


def softcot_eval(method, data_file, out_dir, task="gsm8k"):
    from softcot.evaluate import evaluate

    evaluate(method, load_examples(task, data_file),
             EvalConfig(task=task, data_file=str(data_file), output_dir=str(out_dir), batch_size=4, seeds=[41]),
             DecodingConfig(max_new_tokens=GEN["max_gen_toks"]))
    rows = [json.loads(x) for x in (Path(out_dir) / "predictions.jsonl").read_text().splitlines()]
    return {r["index"]: r for r in rows}


@pytest.fixture(scope="module")
def zs():
    return model(method="zero-shot-cot", llm=str(LLM_DIR), task="gsm8k")


@pytest.fixture(scope="module")
def soft_ckpt(tmp_path_factory):
    """A SoftCoT checkpoint of the mini pair (projection initialised from a fixed seed, untrained)."""
    from softcot.methods import build_method

    torch.manual_seed(3)
    m = build_method(ModelConfig(method="softcot", llm=str(LLM_DIR), assistant=str(ASSISTANT_DIR), task="miniworld",
                                 n_thoughts=4), "cpu")
    out = tmp_path_factory.mktemp("ckpt") / "softcot"
    m.save(out)
    return out


# ---- lm-eval's own tasks, generate_until ---------------------------------------------------------------
def test_gsm8k_task_runs_with_lm_evals_filters_and_matches_softcot_eval(world, zs, tmp_path):
    res = run(world, zs, ["gsm8k_fx", "gsm8k_q"])
    for task in ("gsm8k_fx", "gsm8k_q"):
        r = res["results"][task]
        assert {"exact_match,strict-match", "exact_match,flexible-extract"} <= set(r)
        assert r["sample_len"] == 12
    # lm-eval's prompt reached the model as the question: the softcot prompt holds "Question: <q>\nAnswer:"
    q0 = [s for s in res["samples"]["gsm8k_fx"] if s["doc_id"] == 0][0]
    assert q0["arguments"][0][0].startswith("Question: ") and q0["arguments"][0][0].endswith("\nAnswer:")
    # parity: the same questions, greedy, the same prompt -> the same completions as `softcot eval`
    mine = softcot_eval(zs.method, FIX / "gsm8k.jsonl", tmp_path / "ev")
    theirs = responses(res, "gsm8k_q")
    assert len(theirs) == 12
    assert all(theirs[i] == [mine[i]["completion"]] for i in range(12)), [(theirs[i], mine[i]["completion"]) for i in range(3)]
    assert any("\\boxed{" in mine[i]["completion"] for i in range(12))  # the mini LLM answers in softcot's format


def test_softcot_checkpoint_with_soft_thoughts_matches_softcot_eval(world, soft_ckpt, tmp_path):
    from softcot.methods import load_method

    lm = model(checkpoint=str(soft_ckpt), n_thoughts=4)
    assert lm.method.name == "softcot" and lm.n_thoughts == 4
    theirs = responses(run(world, lm, ["mini_q"]), "mini_q")
    mine = softcot_eval(load_method(soft_ckpt, "cpu", n_thoughts=4), world["mini8"], tmp_path / "ev", task="miniworld")
    assert [theirs[i] for i in range(8)] == [[mine[i]["completion"]] for i in range(8)]
    # the thoughts matter: another N gives other completions for some question
    other = responses(run(world, model(checkpoint=str(soft_ckpt), n_thoughts=1), ["mini_q"]), "mini_q")
    assert any(other[i] != theirs[i] for i in range(8))


def test_until_and_max_gen_toks_are_honoured(zs):
    from lm_eval.api.instance import Instance

    def req(q, **g):
        return Instance("generate_until", {}, (q, g), 0)

    q = json.loads((DATA_DIR / "test.jsonl").read_text().splitlines()[0])["question"]
    full, short, cut = zs.generate_until([req(q, until=[], max_gen_toks=40), req(q, until=[], max_gen_toks=5),
                                          req(q, until=["Step 2"], max_gen_toks=40)])
    assert "Step 2" in full and cut == full.split("Step 2")[0] and len(cut) < len(full)
    assert full.startswith(short) and len(zs.tokenizer.encode(short)) <= 6 < len(zs.tokenizer.encode(full))


def test_several_chains_vote_on_completions_cut_at_the_stop_strings(zs):
    """SoftCoT++'s chains: an answer after a stop string is not what lm-eval scores, so it gets no vote."""
    chains = ["The answer is 9.", "So the answer is 3.\n\nOn second thought, the answer is 9.", "So the answer is 3."]
    assert zs._one_answer(chains, ["\n\n", "Question:"]) == "So the answer is 3."  # 9, 3, 3: uncut, 9, 9, 3
    assert zs._one_answer(chains, []) == "The answer is 9."


# ---- prompt=task: lm-eval's own hf model, the same completions and scores ------------------------------
@pytest.fixture(scope="module")
def penalised_llm(tmp_path_factory):
    """The mini LLM (its files linked) with a generation config that sets a repetition penalty (hf's
    penalises the prompt's tokens too, as Qwen2.5-Instruct's 1.05 does) and no max_new_tokens."""
    out = tmp_path_factory.mktemp("llm_rp")
    for f in LLM_DIR.iterdir():
        if f.name != "generation_config.json":
            (out / f.name).symlink_to(f.resolve())
    gc = json.loads((LLM_DIR / "generation_config.json").read_text())
    gc.pop("max_new_tokens", None)
    (out / "generation_config.json").write_text(json.dumps({**gc, "repetition_penalty": 1.3}))
    return out


@pytest.mark.parametrize("chat_template", [False, True], ids=["raw-context", "apply_chat_template"])
def test_prompt_task_gives_lm_evals_hf_completions_and_scores(world, penalised_llm, chat_template):
    """model_args method=zero-shot-cot,prompt=task is lm-eval's own `hf` model: the same greedy
    completions and metrics (GSM8K, 1 few-shot example: raw text, or chat turns with
    --apply_chat_template --fewshot_as_multiturn) and the same log-likelihoods (ARC)."""
    from lm_eval.api.registry import get_model

    extra = {"device": "cpu", "batch_size": 4}
    hf = get_model("hf").create_from_arg_string(f"pretrained={penalised_llm}", extra)
    sc = get_model("softcot").create_from_arg_string(f"method=zero-shot-cot,llm={penalised_llm},prompt=task", extra)
    kw = dict(apply_chat_template=chat_template, fewshot_as_multiturn=chat_template, limit=6,
              gen_kwargs={"max_gen_toks": 24})
    theirs, mine = run(world, hf, ["gsm8k_fx"], num_fewshot=1, **kw), run(world, sc, ["gsm8k_fx"], num_fewshot=1, **kw)
    a, b = responses(theirs, "gsm8k_fx"), responses(mine, "gsm8k_fx")
    assert len(a) == 6 and a == b, [(a[i], b[i]) for i in a if a[i] != b[i]][:2]
    assert mine["results"]["gsm8k_fx"] == theirs["results"]["gsm8k_fx"]
    assert len({r[0] for r in a.values()}) > 1 and all(r[0] for r in a.values())  # real, different completions
    ctx = [s for s in theirs["samples"]["gsm8k_fx"] if s["doc_id"] == 0][0]["arguments"][0][0]
    assert ctx.startswith("<|begin_of_text|><|start_header_id|>") == chat_template  # the flag reached hf
    # multiple choice: hf's log-likelihood of every choice, and its greedy flags
    theirs, mine = run(world, hf, ["arc_fx"], **kw), run(world, sc, ["arc_fx"], **kw)
    a, b = responses(theirs, "arc_fx"), responses(mine, "arc_fx")
    assert [x[1] for d in a for x in a[d]] == [x[1] for d in a for x in b[d]]
    assert [x[0] for d in a for x in b[d]] == pytest.approx([x[0] for d in a for x in a[d]], abs=1e-4)
    assert mine["results"]["arc_fx"] == theirs["results"]["arc_fx"]
    # a max_new_tokens in the generation config outranks max_gen_toks in hf (transformers' rule): here too
    gc = sc.llm.model.generation_config
    gc.max_new_tokens = 7
    try:
        assert sc._decoding({"max_gen_toks": 24})[0].max_new_tokens == 7
    finally:
        gc.max_new_tokens = None


def test_prompt_task_puts_softcots_thought_block_after_lm_evals_text(soft_ckpt):
    """A SoftCoT checkpoint with prompt=task: lm-eval's raw context (or its chat rendering), then the
    thought block, its N slots filled; prompt=method keeps the trained prompt."""
    from lm_eval.api.instance import Instance
    from softcot.data import Example
    from softcot.prompts import llm_message

    lm = model(checkpoint=str(soft_ckpt), prompt="task", batch_size=2)
    llm = lm.llm
    raw = "Question: Ann has 3 crates of eggs with 4 eggs in each. How many eggs?\nAnswer:"
    ex = Example("lm-eval/0", "miniworld", raw, "")
    block = llm_message(ex, llm.slots(4), begin=llm.begin, end=llm.end, block=llm.block)[len(llm_message(ex, None)):]
    assert block.count(llm.placeholder) == 4
    for c in (chat.parse(raw), chat.parse(lm.apply_chat_template([{"role": "user", "content": raw}]))):
        with chat.reading_as_hf(lm.method, {ex.id: c}):
            (text,) = lm.method.prompt_texts([ex], 4)
        expected = raw + block if not c.templated else \
            llm.tok.apply_chat_template([{"role": "user", "content": raw + block}], tokenize=False, add_generation_prompt=True)
        assert text == expected
    trained = lm.method.prompt_texts([ex], 4)[0]  # prompt=method: softcot's instruction, the chat template
    assert trained != raw + block and trained.startswith("<|begin_of_text|>") and "Question: Question: " in trained
    # end to end through generate_until and loglikelihood (the slots found and filled)
    (text,) = lm.generate_until([Instance("generate_until", {}, (raw, {"until": ["\n\n"], "max_gen_toks": 8}), 0)])
    (lp, _), = lm.loglikelihood([Instance("loglikelihood", {}, (raw, " 12"), 0)])
    assert isinstance(text, str) and lp < 0


def test_hf_tokenization_of_a_context_is_lm_evals():
    """chat.hf_encode is HFLM.tok_encode / tok_batch_encode (add_bos_token unset) for a tokenizer that adds
    BOS itself: BOS before plain text, none before a text that starts with it (a chat template's)."""
    from lm_eval.models.huggingface import HFLM
    from tokenizers.processors import TemplateProcessing
    from tests.tiny import llm_tokenizer

    tok = llm_tokenizer()
    tok._tokenizer.post_processor = TemplateProcessing(single="<|bos|> $A", special_tokens=[("<|bos|>", tok.bos_token_id)])
    stub = type("Stub", (), {"tokenizer": tok, "add_bos_token": None, "backend": "causal",
                             "prefix_token_id": tok.bos_token_id})()
    for text in ("Question: 2+2?\nAnswer:", "<|bos|><|start|>user\nhi<|eot|>"):
        ids = chat.hf_encode(tok, text)
        assert ids == HFLM.tok_encode(stub, text) == HFLM.tok_batch_encode(stub, [text])[0][0].tolist()
        assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id


# ---- loglikelihood: multiple choice -------------------------------------------------------------------
def test_arc_multiple_choice_loglikelihood_equals_a_direct_forward(world, zs):
    res = run(world, zs, ["arc_fx"])
    assert {"acc,none", "acc_norm,none"} <= set(res["results"]["arc_fx"])
    s = [x for x in res["samples"]["arc_fx"] if x["doc_id"] == 2][0]
    llm, tok = zs.llm, zs.tokenizer
    for (ctx, cont), (lp, greedy) in zip(s["arguments"], [r[0] for r in s["resps"]]):
        # independently: softcot's rendered prompt + the choice as the reply's start, one unpadded forward
        from softcot.data import Example

        prompt = zs.method.prompt_texts([Example("x", "gsm8k", ctx, "")], 0)[0]
        p, c = tok.encode(prompt, add_special_tokens=False), tok.encode(cont.lstrip(), add_special_tokens=False)
        with torch.no_grad():
            logits = llm.model(input_ids=torch.tensor([p + c])).logits[0, len(p) - 1 : -1].float().log_softmax(-1)
        assert lp == pytest.approx(float(logits.gather(-1, torch.tensor(c)[:, None]).sum()), abs=1e-4)
        assert greedy == bool((logits.argmax(-1) == torch.tensor(c)).all())


def test_softcot_loglikelihood_of_its_own_greedy_completion_is_greedy_and_batch_free(soft_ckpt):
    from lm_eval.api.instance import Instance

    lm = model(checkpoint=str(soft_ckpt), batch_size=3)
    qs = [json.loads(x)["question"] for x in (DATA_DIR / "test.jsonl").read_text().splitlines()[:3]]
    texts = lm.generate_until([Instance("generate_until", {}, (q, {"until": [], "max_gen_toks": 12}), 0) for q in qs])
    reqs = [Instance("loglikelihood", {}, (q, t), 0) for q, t in zip(qs, texts)]
    batched = lm.loglikelihood(reqs)
    assert all(g for _, g in batched) and all(lp < 0 for lp, _ in batched)
    lm.batch_size = 1
    single = lm.loglikelihood(reqs)
    assert [lp for lp, _ in single] == pytest.approx([lp for lp, _ in batched], abs=1e-4)
    # the soft thoughts are part of the condition: zero-shot's LLM scores the same text differently
    zs_lp = model(method="zero-shot-cot", llm=str(LLM_DIR), task="miniworld").loglikelihood(reqs)
    assert any(abs(a[0] - b[0]) > 1e-3 for a, b in zip(zs_lp, batched))


def test_rolling_loglikelihood_for_the_plain_llm_only(zs, soft_ckpt):
    from lm_eval.api.instance import Instance

    text = "Ann has 3 crates of eggs. She sells 4."
    (lp,) = zs.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])
    ids = [zs.prefix_token_id] + zs.tokenizer.encode(text, add_special_tokens=False)
    with torch.no_grad():
        logits = zs.llm.model(input_ids=torch.tensor([ids])).logits[0, :-1].float().log_softmax(-1)
    assert lp == pytest.approx(float(logits.gather(-1, torch.tensor(ids[1:])[:, None]).sum()), abs=1e-4)
    with pytest.raises(ValueError, match="loglikelihood_rolling .* plain LLM only"):
        model(checkpoint=str(soft_ckpt)).loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])


# ---- chat templates: lm-eval's messages through the method's rendering ---------------------------------
def test_apply_chat_template_and_fewshot_as_multiturn_render_through_the_method(world, zs):
    from softcot.data import Example

    q = "Ann has 3 crates of eggs. How many eggs?"
    own = zs.method.prompt_texts([Example("x", "gsm8k", q, "")], 0)[0]
    one = zs.apply_chat_template([{"role": "user", "content": q}])
    few = zs.apply_chat_template([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1?"},
                                  {"role": "assistant", "content": "A1."}, {"role": "user", "content": q}])

    def rendered(ctx, prompt="method"):
        c = chat.parse(ctx)
        ex = Example("lm-eval/0", "gsm8k", c.question, "")
        with chat.rendering(zs.method, c.frame) if prompt == "method" else chat.reading_as_hf(zs.method, {ex.id: c}):
            return zs.method.prompt_texts([ex], 0)[0]

    assert rendered(one) == own  # one user message: exactly softcot's own prompt
    multi = rendered(few)
    assert multi.endswith(own[own.index("Solve"):])  # the method's own message is the last turn
    assert multi.index("Be brief.") < multi.index("Q1?") < multi.index("A1.") < multi.index("Solve the problem")
    assert multi.count("<|start_header_id|>assistant") == 2  # the few-shot answer is its own assistant turn (mini LLM: Llama-3 template)
    assert not chat.parse(q).templated and chat.parse(one).templated  # a plain context: lm-eval applied no template
    # prompt=task: lm-eval's text as lm-eval's hf model reads it: raw without the template, hf's rendering with it
    assert rendered(q, "task") == q
    hf_render = zs.tokenizer.apply_chat_template(json.loads(few[len(chat.CHAT_PREFIX):]), tokenize=False,
                                                 add_generation_prompt=True)
    assert rendered(few, "task") == hf_render and "Solve the problem" not in hf_render
    prefilled = zs.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": "Step 1:"}])
    assert rendered(prefilled, "task").endswith("<|start_header_id|>assistant<|end_header_id|>\nStep 1:")
    # end to end: lm-eval with --apply_chat_template --fewshot_as_multiturn, 2 few-shot turns
    res = run(world, zs, ["gsm8k_q"], apply_chat_template=True, fewshot_as_multiturn=True, num_fewshot=2, limit=2)
    ctx = res["samples"]["gsm8k_q"][0]["arguments"][0][0]
    msgs = json.loads(ctx[len(chat.CHAT_PREFIX):])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant", "user"]
    assert all(isinstance(r[0], str) and r[0] for r in res["samples"]["gsm8k_q"][0]["resps"])


# ---- bad input: one line, exit 2, before any model loads, nothing written -------------------------------
@pytest.mark.parametrize("model_args,expected", [
    ("checkpoint=/nonexistent/run", "--model_args checkpoint=/nonexistent/run: folder not found"),
    ("method=nope,llm=x", "--model_args method=nope: unknown method 'nope'"),
    ("method=zero-shot-cot,llm=x,temperature=1", "--model_args temperature: unknown model_arg"),
    ("method=zero-shot-cot,llm=x,n_thoughts=many", "--model_args n_thoughts=many: expected a positive integer"),
    ("method=zero-shot-cot", "--model_args llm is required"),
    ("method=zero-shot-cot,llm=/nonexistent/llm", "--model_args llm: model folder '/nonexistent/llm' not found"),
    ("llm=x", "give checkpoint=DIR"),
    ("method=zero-shot-cot,llm=x,prompt=raw", "--model_args prompt=raw: expected one of ['method', 'task']"),
    ("method=zero-shot-cot,broken", "expected `key=value`, got 'broken'"),
])
def test_bad_model_args_fail_in_one_line_before_loading(model_args, expected, tmp_path, capsys):
    from softcot.cli import main

    out = tmp_path / "out"
    rc = main(["lm-eval", "run", "--model", "softcot", "--model_args", model_args, "--tasks", "gsm8k",
               "--output_path", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("softcot: error: "), err
    assert expected in err, err
    assert not out.exists()


def test_unknown_task_fails_in_one_line_before_the_model_loads(world, tmp_path, capsys, monkeypatch):
    import lm_eval.tasks
    from softcot.cli import main
    from softcot.harness import model as harness_model

    real = lm_eval.tasks.TaskManager
    monkeypatch.setattr(lm_eval.tasks, "TaskManager", lambda *a, **k: real(*a, **{**k, "include_defaults": False}))
    monkeypatch.setattr(harness_model.SoftCoTLM, "__init__", lambda *a, **k: pytest.fail("model built"))
    out = tmp_path / "out"
    rc = main(["lm-eval", "--model", "softcot", "--model_args", f"method=zero-shot-cot,llm={LLM_DIR}",
               "--tasks", "no_such_task", "--output_path", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err] and "--tasks no_such_task: no such lm-eval task" in err, err
    assert not out.exists()


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_empty_question_is_refused(question, zs, capsys):
    from lm_eval.api.instance import Instance
    from softcot.cli import main

    rc = main(["generate", "--method", "zero-shot-cot", "--llm", "/nonexistent/llm", "--question", question])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("softcot: error: --question") and "empty or whitespace-only" in err
    with pytest.raises(ValueError, match="empty or whitespace-only question"):
        zs.generate_until([Instance("generate_until", {}, (question, {"until": []}), 0)])


def test_empty_question_in_a_data_file_is_refused(tmp_path):
    from softcot.data import DataError

    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps({"question": "Ann has 3.", "answer": "#### 3"}) + "\n"
                 + json.dumps({"question": " \t", "answer": "#### 4"}) + "\n")
    with pytest.raises(DataError, match=r"q.jsonl: line 2: field 'question' is empty or whitespace-only"):
        load_examples("gsm8k", f)


# ---- two processes share the requests: the same results as one ---------------------------------------
def test_two_processes_share_the_requests_and_give_the_same_results_as_one(world, tmp_path):
    script = ROOT / "tests" / "lm_eval_dist_script.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT), "HF_DATASETS_CACHE": str(world["root"] / "hf-cache")}
    results, ranks = [], []
    for procs in (1, 2):
        out = tmp_path / f"p{procs}.json"
        from tests.test_distributed import free_port

        launcher = [sys.executable] if procs == 1 else [
            sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
            "--main_process_port", str(free_port())]
        p = subprocess.run([*launcher, str(script), str(world["root"] / "tasks"), str(out)], env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        results.append(json.loads(out.read_text()))
        ranks.append([json.loads((tmp_path / f"p{procs}.json.rank{r}.json").read_text()) for r in range(procs)])
    one, two = results
    assert one["world_size"] == 1 and two["world_size"] == 2  # what the model reported (get_model_info)
    # each of the 2 processes answered a strict, non-empty share of the requests, and the shares add up to
    # what 1 process answered (distinct requests: lm-eval pads rank 1's 7 ARC choices to rank 0's 8)
    assert [(r["rank"], r["world_size"]) for r in ranks[1]] == [(0, 2), (1, 2)]
    total = ranks[0][0]["handled"]
    assert total == {"generate_until": 8, "loglikelihood": 15}, total  # 8 GSM8K docs; ARC: 4 + 4 + 4 + 3 choices
    for kind, n in total.items():
        shares = [r["handled"].get(kind, 0) for r in ranks[1]]
        assert all(0 < k < n for k in shares) and sum(shares) == n, (kind, shares, n)
    assert one["samples"].keys() == two["samples"].keys() and len(one["samples"]["mini_q"]) == 8
    for task in one["samples"]:
        for doc, resp in one["samples"][task].items():
            got = two["samples"][task][doc]
            if task == "arc_fx":
                assert [r[0][0] for r in got] == pytest.approx([r[0][0] for r in resp], abs=1e-4)
                assert [r[0][1] for r in got] == [r[0][1] for r in resp]
            else:
                assert got == resp
    for task, metrics in one["results"].items():
        assert two["results"][task] == pytest.approx(metrics)
