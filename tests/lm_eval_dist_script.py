"""Run by tests/test_lm_eval.py in 1 process or under `accelerate launch --num_processes 2`: lm-eval
with the `softcot` model (zero-shot CoT, mini LLM) on a local GSM8K-format task and a local ARC task;
the main process writes the per-document responses and the metrics to OUT, and every process writes
what its model answered (rank, world_size, requests handled per request type) to OUT.rank<RANK>.json,
RANK being the launcher's (so a model that ignored its rank would still be seen doing all the work).

    python tests/lm_eval_dist_script.py TASK_DIR OUT
"""
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lm_eval  # noqa: E402
from lm_eval.tasks import TaskManager  # noqa: E402

from softcot.harness import register  # noqa: E402
from softcot.harness.model import SoftCoTLM  # noqa: E402
from softcot.miniworld import LLM_DIR  # noqa: E402

torch.set_num_threads(1)
register()
tasks, out = sys.argv[1], Path(sys.argv[2])
lm = SoftCoTLM.create_from_arg_string(
    f"method=zero-shot-cot,llm={LLM_DIR},task=miniworld,batch_size=2,device=auto")
res = lm_eval.simple_evaluate(
    model=lm, tasks=["mini_q", "arc_fx"], task_manager=TaskManager(include_path=tasks, include_defaults=False),
    num_fewshot=0, log_samples=True, gen_kwargs={"max_gen_toks": 24}, bootstrap_iters=0)
Path(f"{out}.rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(
    {"rank": lm.rank, "world_size": lm.world_size, "handled": dict(lm.requests_handled)}))
if res is not None:  # the main process
    samples = {t: {str(s["doc_id"]): s["resps"] for s in rows if s["filter"] in ("strict-match", "none")}
               for t, rows in res["samples"].items()}
    metrics = {t: {k: v for k, v in r.items() if "," in k and "stderr" not in k} for t, r in res["results"].items()}
    out.write_text(json.dumps({"samples": samples, "results": metrics, "world_size": res["config"]["world_size"]}))
