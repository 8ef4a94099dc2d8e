"""Run by tests/test_distributed.py under `accelerate launch --multi_gpu --num_processes K` (or plain
python for K=1): every method is trained (if it trains) and evaluated on the tiny pair through the
shared trainer and evaluation loop; the main process writes what each produced to OUT/result.json.

    python tests/dist_script.py MODELS_DIR DATA_FILE OUT
"""
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from softcot import distributed as dist  # noqa: E402
from softcot.config import DecodingConfig, EvalConfig, TrainConfig, from_dict, ModelConfig  # noqa: E402
from softcot.data import load_examples  # noqa: E402
from softcot.evaluate import evaluate  # noqa: E402
from softcot.methods import METHOD_NAMES, build_method  # noqa: E402
from softcot.train import train  # noqa: E402
from softcot.utils import seed_everything  # noqa: E402

torch.set_num_threads(1)
models, data_file, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
examples = load_examples("gsm8k", data_file)
result = {}
for name in METHOD_NAMES:
    seed_everything(0)
    cfg = from_dict(ModelConfig, dict(method=name, assistant=str(models / "assistant"), llm=str(models / "llm"),
                                      n_thoughts=2, num_chains=2, prompt_tokens=2, hint_tokens=4,
                                      coconut_thoughts_per_step=1, coconut_max_stages=1, coconut_stage=1))
    method = build_method(cfg, "cpu")
    row = {}
    if method.trains:
        summary = train(method, TrainConfig(output_dir=str(out / name / "ckpt"), train_n_thoughts=2, max_steps=2,
                                            batch_size=2, grad_accum=2, lr=1e-2, dev_fraction=0.25, max_length=128,
                                            seed=1), examples)
        row["final_loss"] = summary["final_loss"]
        row["weights"] = {k: v.flatten()[:6].tolist() for k, v in method.trainable_state_dict().items()}
    metrics = evaluate(method, examples[:6], EvalConfig(task="gsm8k", data_file=data_file, output_dir=str(out / name / "eval"),
                                                        seeds=[41, 42], batch_size=2),
                       DecodingConfig(max_new_tokens=4, do_sample=True))
    if dist.is_main():
        row["predictions"] = (out / name / "eval" / "predictions.jsonl").read_text()
        row["n_rows"] = len(row["predictions"].splitlines())
        result[name] = row
if dist.is_main():
    (out / "result.json").write_text(json.dumps(result))
