"""One interface for SoftCoT and every baseline, so training, evaluation and scoring exist once.

A method turns a batch of `Example`s into the frozen LLM's input embeddings (for generation, and
with reply labels for training), owns at most one trainable module, and saves only that module:

    method = build_method(SoftCoTConfig(method="softcot", assistant=..., llm=...))
    loss = method.loss(examples, n_thoughts=32)             # training-capable methods
    completions = method.generate(examples, DecodingConfig())  # [[str, ...], ...]
    method.save("runs/x")                                    # trainable tensors + config JSON
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from softcot.assistant import Assistant
from softcot.config import DecodingConfig, SoftCoTConfig
from softcot.errors import CheckpointError
from softcot.llm import FrozenLLM
from softcot.utils import count_parameters

CONFIG_NAME = "softcot_config.json"


class Method(ABC):
    name: ClassVar[str]
    needs_assistant: ClassVar[bool] = False
    weights_name: ClassVar[str] = "trainable.safetensors"

    def __init__(self, cfg: SoftCoTConfig, llm: FrozenLLM, assistant: Assistant | None = None) -> None:
        self.cfg, self.llm, self.assistant = cfg, llm, assistant
        self.trainable: nn.Module | None = None  # the only module whose weights are ever saved

    # ---- inputs ------------------------------------------------------------------------
    def prompt_texts(self, examples: list, n_thoughts: int) -> list[str]:
        """The rendered LLM prompts (thought slots shown as placeholder tokens); recorded in
        predictions so every row says exactly what the LLM read."""
        return self.llm.prompt_texts(examples, None)

    @abstractmethod
    def generation_inputs(self, examples: list, n_thoughts: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded LLM input embeddings [B, T, d_llm] and attention mask [B, T]."""

    def train_inputs(self, examples: list, n_thoughts: int, max_length: int = 1024) -> tuple[torch.Tensor, ...]:
        """Right-padded embeddings, mask and reply-only labels. Methods that train override it."""
        raise NotImplementedError(f"method {self.name!r} does not train")

    # ---- the two workflows -----------------------------------------------------------------
    def loss(self, examples: list, n_thoughts: int | None = None, max_length: int = 1024) -> torch.Tensor:
        embeds, mask, labels = self.train_inputs(examples, n_thoughts or self.cfg.n_thoughts, max_length)
        return self.llm.reply_loss(embeds, mask, labels)

    @torch.no_grad()
    def generate(self, examples: list, dec: DecodingConfig, n_thoughts: int | None = None) -> list[list[str]]:
        embeds, mask = self.generation_inputs(examples, n_thoughts or self.cfg.n_thoughts)
        return self.llm.generate(embeds, mask, dec)

    def prepare_training(self, examples: list, n_thoughts: int) -> None:
        """Hook run once before training (e.g. to cache the frozen assistant's soft thoughts)."""

    # ---- parameters and checkpoints ---------------------------------------------------------
    @property
    def trains(self) -> bool:
        return self.trainable is not None

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.trainable.parameters() if p.requires_grad] if self.trainable is not None else []

    def parameter_report(self) -> dict[str, int | float]:
        trainable_params = self.trainable_parameters()
        own = {id(p) for p in trainable_params}  # LoRA lives inside the LLM: count it once
        frozen = count_parameters(p for p in self.llm.model.parameters() if id(p) not in own)
        if self.assistant is not None:
            frozen += count_parameters(p for p in self.assistant.model.parameters() if id(p) not in own)
        trainable = count_parameters(trainable_params)
        total = frozen + trainable
        return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / max(total, 1)}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.trainable.state_dict().items()} if self.trainable else {}

    def save(self, out_dir: str | Path) -> None:
        """Write the trainable tensors (never the frozen LMs) and the config that rebuilds the model."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.trainable is not None:
            tmp = out / f".{self.weights_name}.tmp"
            save_file(self.trainable_state_dict(), str(tmp), metadata={"format": "pt", "method": self.name})
            tmp.replace(out / self.weights_name)
        self.save_config(out)

    def save_config(self, out: Path) -> None:
        from softcot import __version__

        self.cfg.version = __version__
        self.cfg.to_json(out / CONFIG_NAME)

    def load_trained(self, ckpt_dir: str | Path) -> None:
        """Load trainable tensors saved by `save`, checking every shape against this model pair."""
        if self.trainable is None:
            return
        path = Path(ckpt_dir) / self.weights_name
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; expected a checkpoint folder written by `softcot train`")
        self.load_tensors(load_file(str(path)), str(path))

    def load_tensors(self, sd: dict[str, torch.Tensor], source: str) -> None:
        """Load tensors from `trainable_state_dict()` form; methods that save a subset override
        both (e.g. LoRA saves adapter tensors only)."""
        own = self.trainable_state_dict()
        if set(sd) != set(own):
            raise CheckpointError(f"{source}: holds tensors {sorted(sd)}, expected {sorted(own)}")
        for k, v in sd.items():
            if v.shape != own[k].shape:
                raise CheckpointError(
                    f"{source}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)} "
                    "for this assistant/LLM pair (was it trained for other models?)"
                )
        self.assign_tensors(sd)

    def assign_tensors(self, sd: dict[str, torch.Tensor]) -> None:
        """Copy already-checked tensors into the trainable module (LoRA goes through peft)."""
        self.trainable.load_state_dict(sd, strict=False)
