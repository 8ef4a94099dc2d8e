"""lm-eval's own task definitions on local files: a task YAML that `include`s an installed lm-eval
task (its prompt, filters, metrics, generation settings) and swaps only the data source for local
JSON-lines files (the `json` dataset builder of `datasets`, which needs no network).

    write_local_task("tasks/", "gsm8k_local", "gsm8k/gsm8k.yaml", {"test": "test.jsonl", "train": "train.jsonl"})
    softcot lm-eval run --include_path tasks/ --tasks gsm8k_local --model softcot --model_args ...

The files must have the fields the included task reads (GSM8K: question, answer; ARC: question,
choices {text, label}, answerKey). `overrides` replaces further YAML keys (doc_to_text, ...).
"""
from __future__ import annotations

from pathlib import Path

import yaml


def lm_eval_task_dir() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def write_local_task(out_dir: str | Path, name: str, base: str, data_files: dict[str, str | Path],
                     **overrides) -> Path:
    """Write OUT_DIR/NAME.yaml: lm-eval's task `base` (a YAML path under lm_eval/tasks) on local files."""
    base_path = lm_eval_task_dir() / base
    if not base_path.is_file():
        raise FileNotFoundError(f"{base_path}: no such lm-eval task YAML")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = {"include": str(base_path), "task": name, "tag": [], "dataset_path": "json", "dataset_name": None,
           "dataset_kwargs": {"data_files": {k: str(Path(v).resolve()) for k, v in data_files.items()}}, **overrides}
    if "validation" not in data_files:
        cfg["validation_split"] = None
    if "train" not in data_files:
        cfg.update(training_split=None, fewshot_split=None)
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path
