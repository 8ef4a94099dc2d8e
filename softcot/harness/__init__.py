"""softcot inside EleutherAI's lm-evaluation-harness: every softcot method as the lm-eval model `softcot`.

    softcot lm-eval run --model softcot --model_args checkpoint=runs/x,n_thoughts=4 \
        --tasks gsm8k_cot_zeroshot --device cpu --batch_size 8
    softcot lm-eval run --model softcot --model_args method=zero-shot-cot,llm=Qwen/Qwen2.5-7B-Instruct ...

    from softcot.harness import register; register()          # then lm_eval.simple_evaluate(model="softcot", ...)

Modules:
  args   the model_args (names, types, checks that run before any model loads; no torch)
  chat   how an lm-eval context becomes a softcot question: softcot's own rendering (prompt=method)
         or lm-eval's prompt read as lm-eval's hf model reads it (prompt=task)
  model  SoftCoTLM, lm-eval's TemplateLM: generate_until, loglikelihood(_rolling), rank/world_size
  cli    `softcot lm-eval ...`: checks the arguments, registers the model, hands over to lm-eval's CLI

lm-eval is an optional extra (`pip install "softcot[lm-eval]"`): nothing here is imported by the
rest of softcot, and `register()` fails with one clear line when lm-eval is missing.
"""
from __future__ import annotations

MODEL_NAME = "softcot"


def register() -> None:
    """Register `softcot` in lm-eval's model registry (idempotent). lm-eval's own models are
    registered first: its registry only imports them when it is empty."""
    from softcot.errors import ConfigError

    try:
        import lm_eval.models  # noqa: F401 - fills the registry with lm-eval's own models
        from lm_eval.api.registry import model_registry
    except ImportError:
        raise ConfigError('lm-eval is not installed; install the extra: pip install "softcot[lm-eval]"') from None
    if MODEL_NAME not in model_registry:
        model_registry.register(MODEL_NAME, target="softcot.harness.model:SoftCoTLM")
