"""The mini world: a tiny arithmetic word-problem task, two tiny from-scratch LMs (an LLM and an
assistant with different tokenizers, hidden sizes and architectures) and their data splits, so
the whole SoftCoT pipeline runs and is measured on a laptop CPU in minutes. Some problems need a
fact the question leaves out (how many items a crate holds): the assistant knows it, the LLM
does not, so the demo measures whether SoftCoT's projection learns to carry it across.

    from softcot.miniworld import LLM_DIR, ASSISTANT_DIR, DATA_DIR
    # AutoModelForCausalLM.from_pretrained(LLM_DIR), load_examples("miniworld", DATA_DIR / "train.jsonl")

Rebuild with `python -m softcot.miniworld.build --out DIR` (about 12 minutes on 2 cores).

The five-family world (`FAMILIES_DIR`: GSM8K-, ASDiv-Aug-, AQuA-, StrategyQA- and Date-style
splits in their native formats, a Llama-style and a Qwen-style mini LLM, one assistant that knows
the world's facts imperfectly) is `softcot.miniworld.families` + `build_families`; rebuild with
`python -m softcot.miniworld.build --world families --out DIR`.
"""
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
LLM_DIR = ASSETS_DIR / "llm"
ASSISTANT_DIR = ASSETS_DIR / "assistant"
DATA_DIR = ASSETS_DIR / "data"
MANIFEST = ASSETS_DIR / "MANIFEST.json"
FAMILIES_DIR = ASSETS_DIR / "families"  # data/<task>/, llama/, qwen/, assistant/, MANIFEST.json

__all__ = ["ASSETS_DIR", "LLM_DIR", "ASSISTANT_DIR", "DATA_DIR", "MANIFEST", "FAMILIES_DIR"]
