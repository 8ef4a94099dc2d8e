"""LoRA fine-tuning of the LLM on the same training targets as SoftCoT (zero-shot prompt, no
thought block). The adapters are injected into the LLM module in place (peft), so FrozenLLM's
reply-only loss and batched decoding run unchanged; only the LoRA matrices train (fp32).

    method = build_method(SoftCoTConfig(method="lora", llm="large", lora_r=8, lora_targets="q_proj,v_proj"))
    train(method, TrainConfig(...), examples)
    method.save("runs/lora")   # adapter_model.safetensors + adapter_config.json (peft) + softcot_config.json
    method = load_method("runs/lora")

Note: the LLM module passed in is modified (adapters added): give each LoRA method its own copy.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from peft.utils import load_peft_weights

from softcot.data import target_text
from softcot.errors import CheckpointError
from softcot.methods.base import Method

ADAPTER_WEIGHTS = "adapter_model.safetensors"


def attach_lora(model, cfg) -> PeftModel:
    """Inject LoRA adapters (rank cfg.lora_r, alpha cfg.lora_alpha) into `model` in place."""
    targets = cfg.lora_targets.strip()
    modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    lcfg = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0, target_modules=modules,
                      task_type="CAUSAL_LM")
    # autocast_adapter_dtype (default): adapters are fp32 even in a bf16 LLM (trap 1)
    with warnings.catch_warnings():  # peft asks transformers a deprecated question; nothing to act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = get_peft_model(model, lcfg)
    assert peft_model.base_model.model is model  # injected in place: FrozenLLM keeps using `model`
    return peft_model


class LoRA(Method):
    name = "lora"
    weights_name = ADAPTER_WEIGHTS

    def __init__(self, cfg, llm, assistant=None) -> None:
        super().__init__(cfg, llm, assistant)
        self.peft = attach_lora(llm.model, cfg)
        self.trainable = self.peft  # trainable_parameters() keeps the LoRA tensors (requires_grad)

    # ---- inputs: the zero-shot prompt, then the target ----------------------------------------
    def generation_inputs(self, examples, n_thoughts):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        return self.llm.embed(ids), mask

    def train_inputs(self, examples, n_thoughts, max_length=1024):
        texts = self.prompt_texts(examples, n_thoughts)
        ids, mask, labels = self.llm.encode_train(texts, [target_text(ex) for ex in examples], max_length)
        return self.llm.embed(ids), mask, labels

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
        self.peft.save_pretrained(str(out))  # adapter_model.safetensors + adapter_config.json
        self.save_config(out)

    def load_trained(self, ckpt_dir: str | Path) -> None:
        path = Path(ckpt_dir) / ADAPTER_WEIGHTS
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; expected a LoRA checkpoint folder written by `softcot train`")
        self.load_tensors(load_peft_weights(str(ckpt_dir), device="cpu"), str(path))
