"""LoRA fine-tuning of the LLM on the same training targets as SoftCoT (zero-shot prompt, no
thought block). The adapters are injected into the LLM module in place (peft), so FrozenLLM's
reply-only loss and batched decoding run unchanged; only the LoRA matrices train (fp32).

    method = build_method(ModelConfig(method="lora", llm="large", lora=LoRAConfig(r=8, targets="q_proj,v_proj")))
    train(method, TrainConfig(...), examples)
    method.save("runs/lora")   # adapter_model.safetensors + adapter_config.json (peft) + softcot_config.json
    method = load_method("runs/lora")

Note: the LLM module passed in is modified (adapters added): give each LoRA method its own copy.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.utils import load_peft_weights

from softcot.errors import CheckpointError
from softcot.methods.base import CONFIG_NAME, Method

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def attach_lora(model, cfg) -> PeftModel:
    """Inject LoRA adapters (rank cfg.lora.r, alpha cfg.lora.alpha) into `model` in place."""
    targets = cfg.lora.targets.strip()
    modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    lcfg = LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=0.0, target_modules=modules,
                      task_type="CAUSAL_LM")
    # autocast_adapter_dtype (default): adapters are fp32 even in a bf16 LLM (trap 1)
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lcfg)
    assert peft_model.base_model.model is model  # injected in place: FrozenLLM keeps using `model`
    return peft_model


class LoRA(Method):
    name = "lora"
    description = "LoRA adapters on the frozen LLM, trained on the same targets (zero-shot prompt)"
    trains_what = "LoRA adapters"
    weights_name = ADAPTER_WEIGHTS

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        self.peft = attach_lora(llm.model, cfg)
        self.trainable = self.peft  # trainable_parameters() keeps the LoRA tensors (requires_grad)

    # ---- adapter-only checkpoints, through peft ----------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA tensors only, under peft's saved names (no base weights, no adapter name)."""
        return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.peft).items()}

    def assign_tensors(self, sd: dict[str, torch.Tensor]) -> None:
        result = set_peft_model_state_dict(self.peft, sd)
        if result.unexpected_keys:
            raise CheckpointError(f"peft did not place tensors {sorted(result.unexpected_keys)[:4]}")

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        # peft writes adapter_model.safetensors + adapter_config.json in place; write them into a
        # temp folder beside `out` and rename each, so a crash never leaves a torn adapter.
        with tempfile.TemporaryDirectory(dir=out, prefix=".adapter.") as tmp:
            self.peft.save_pretrained(tmp)
            for f in Path(tmp).iterdir():
                os.replace(f, out / f.name)
        self.saved_config().to_json(out / CONFIG_NAME)

    def load_trained(self, ckpt_dir: str | Path) -> None:
        path = Path(ckpt_dir) / ADAPTER_WEIGHTS
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; expected a LoRA checkpoint folder written by `softcot train`")
        self.load_tensors(load_peft_weights(str(ckpt_dir), device="cpu"), str(path))
