"""One interface for SoftCoT and every baseline, so training, evaluation and scoring exist once.

A method turns a batch of `Example`s into the frozen LLM's input embeddings (for generation, and
with reply-only labels for training), owns at most one trainable module, and saves only that:

    method = build_method(ModelConfig(method="softcot", assistant=..., llm=...))
    loss = method.loss(examples, n_thoughts=32)                 # methods that train
    completions = method.generate(examples, DecodingConfig())   # [[Completion(str), ...], ...]
    method.save("runs/x")                                       # trainable tensors + config JSON

Everything a caller needs is asked through the interface, never by looking at a method's name:
`thought_count(n)` (the N it really uses), `completions_per_example(dec)`, `trains`,
`training_phases()` / `enter_phase(i)` (curricula such as Coconut's stages), `cacheable_thoughts`
(whether the trainer may cache its per-example thoughts).

Two families share code here:
  Method      the LLM reads text only (zero-shot CoT, Assist-CoT, LoRA, Coconut's prefix)
  SlotMethod  the LLM's prompt has N thought slots whose embeddings are replaced by vectors
              (SoftCoT, SoftCoT++, prompt tuning, CoT-Unk): one abstract step, `thoughts()`.
"""
from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import torch
from safetensors.torch import load_file
from torch import nn

from softcot.assistant import Assistant
from softcot.config import DecodingConfig, ModelConfig
from softcot.data import target_text
from softcot.errors import CheckpointError
from softcot.llm import Completion, FrozenLLM
from softcot.prefix import reusing
from softcot.utils import atomic_save_safetensors, count_parameters

CONFIG_NAME = "softcot_config.json"


class Method(ABC):
    name: ClassVar[str]
    description: ClassVar[str]  # one line, printed by `softcot methods`
    needs_assistant: ClassVar[bool] = False
    trains_what: ClassVar[str] = ""  # what training changes ("projection", ...); "" = training-free
    weights_name: ClassVar[str] = "trainable.safetensors"
    # the frozen assistant's per-example states, which a training run or a multi-seed evaluation
    # may compute once (ThoughtCache) and pass back as `cache` / `thought_cache`
    cacheable_thoughts: ClassVar[bool] = False
    rows_per_example: ClassVar[int] = 1  # LLM rows per question (SoftCoT++: one per chain)

    def __init__(self, cfg: ModelConfig, llm: FrozenLLM, assistant: Assistant | None = None) -> None:
        self.cfg, self.llm, self.assistant = cfg, llm, assistant
        self.trainable: nn.Module | None = None  # the only module whose weights are ever saved

    # ---- what callers ask ------------------------------------------------------------------------
    def thought_count(self, n: int | None = None) -> int:
        """The number of thought slots this method fills for a requested N (0 = configured)."""
        return n or self.cfg.n_thoughts

    def completions_per_example(self, dec: DecodingConfig) -> int:
        return dec.num_samples * self.rows_for(1)

    def rows_for(self, n_examples: int) -> int:
        return n_examples * self.rows_per_example

    def training_phases(self) -> list[str]:
        """Names of the training phases, run in order with a fresh optimizer each (one by default)."""
        return [""]

    def enter_phase(self, index: int) -> None:
        """Switch to training phase `index` (a curriculum stage); nothing by default."""

    @classmethod
    def bridges(cls, cfg: ModelConfig) -> bool:
        """Whether `init_trainable` starts the trainable part from data (projection_init='vocab')."""
        return False

    def init_trainable(self, examples: list, n: int, how: str, cache=None) -> dict:
        """A data-driven starting point for the trainable part, from training questions only
        (no labels), called by the trainer before step 0; nothing by default. Returns what it did."""
        return {}

    # ---- inputs ------------------------------------------------------------------------------------
    def prompt_texts(self, examples: list, n_thoughts: int) -> list[str]:
        """The rendered LLM prompts, one per example (thought slots shown as placeholder tokens);
        recorded in predictions so every row says exactly what the LLM read."""
        return self.llm.prompt_texts(examples, None)

    def generation_inputs(self, examples: list, n_thoughts: int, thought_cache=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded LLM input embeddings [R, T, d_llm] and mask [R, T], R = rows_for(B).
        `thought_cache` (an evaluation's ThoughtCache, see `cacheable_thoughts`) may hold the
        frozen assistant's states of examples seen before (under another seed)."""
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        return self.llm.embed(ids), mask

    def train_inputs(self, examples: list, n_thoughts: int, max_length: int = 1024, cache=None) -> tuple[torch.Tensor, ...]:
        """Right-padded embeddings, mask and reply-only labels [R, T]."""
        ids, mask, labels = self.llm.encode_train(self.prompt_texts(examples, n_thoughts),
                                                  [target_text(ex) for ex in examples], max_length)
        return self.llm.embed(ids), mask, labels

    @contextlib.contextmanager
    def reusing_prefix(self, enabled: bool = True):
        """Within this block, the frozen LMs compute the prompt prefix their rows share once
        (softcot.prefix): `evaluate()` holds one block per call, while no weight changes."""
        with contextlib.ExitStack() as stack:
            stack.enter_context(reusing(self.llm, enabled))
            if self.assistant is not None:
                stack.enter_context(reusing(self.assistant, enabled))
            yield

    # ---- the two workflows -------------------------------------------------------------------------
    def loss(self, examples: list, n_thoughts: int | None = None, max_length: int = 1024, cache=None) -> torch.Tensor:
        if not self.trains:
            raise NotImplementedError(f"method {self.name!r} does not train")
        embeds, mask, labels = self.train_inputs(examples, self.thought_count(n_thoughts), max_length, cache)
        return self.llm.reply_loss(embeds, mask, labels)

    @torch.no_grad()
    def generate(self, examples: list, dec: DecodingConfig, n_thoughts: int | None = None,
                 thought_cache=None) -> list[list[Completion]]:
        """completions_per_example(dec) completions per example (row-major over its LLM rows)."""
        embeds, mask = self.generation_inputs(examples, self.thought_count(n_thoughts), thought_cache)
        rows = self.llm.generate(embeds, mask, dec)  # R lists of num_samples
        r = self.rows_per_example
        return [[c for row in rows[b * r : (b + 1) * r] for c in row] for b in range(len(examples))]

    # ---- parameters and checkpoints -----------------------------------------------------------------
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

    def saved_config(self) -> ModelConfig:
        """The config written beside the tensors (methods with run-time state, e.g. a curriculum
        stage, put it here)."""
        from softcot import __version__

        return dataclasses.replace(self.cfg, version=__version__)

    def save(self, out_dir: str | Path) -> None:
        """Write the trainable tensors (never the frozen LMs) and the config that rebuilds the model."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if self.trainable is not None:
            atomic_save_safetensors(self.trainable_state_dict(), out / self.weights_name, {"method": self.name})
        self.saved_config().to_json(out / CONFIG_NAME)

    def load_trained(self, ckpt_dir: str | Path) -> None:
        """Load trainable tensors saved by `save`, checking every shape against this model pair."""
        if self.trainable is None:
            return
        path = Path(ckpt_dir) / self.weights_name
        if not path.is_file():
            raise CheckpointError(f"{path}: not found; expected a checkpoint folder written by `softcot train`")
        try:
            sd = load_file(str(path))
        except Exception as e:  # noqa: BLE001 - a torn or foreign file is one line
            raise CheckpointError(f"{path}: not a readable safetensors file ({str(e).splitlines()[0][:120]})") from None
        self.load_tensors(sd, str(path))

    def load_tensors(self, sd: dict[str, torch.Tensor], source: str) -> None:
        """Load tensors of `trainable_state_dict()` form, checking names and shapes."""
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


class SlotMethod(Method):
    """The LLM prompt holds N thought slots; a subclass says which vectors fill them."""

    @abstractmethod
    def thoughts(self, examples: list, n: int, cache=None) -> torch.Tensor:
        """The thought vectors [R, n, d_llm] for this batch (R = rows_for(len(examples))).
        `cache` (a trainer's ThoughtCache) may hold per-example values that never change."""

    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))

    def _rows(self, items: list) -> list:
        return [x for x in items for _ in range(self.rows_per_example)]  # example-major rows

    def generation_inputs(self, examples, n_thoughts, thought_cache=None):
        ids, mask = self.llm.encode_prompts(self._rows(self.prompt_texts(examples, n_thoughts)))  # [R, T]
        thoughts = self.thoughts(examples, n_thoughts, thought_cache)  # [R, n, d_llm]
        embeds = self.llm.splice(self.llm.embed(ids), ids, mask, thoughts)
        return embeds, mask  # [R, T, d_llm], [R, T]

    def train_inputs(self, examples, n_thoughts, max_length=1024, cache=None, thoughts=None):
        """As Method.train_inputs, with the slots filled by `thoughts` (computed when None)."""
        texts = self._rows(self.prompt_texts(examples, n_thoughts))
        targets = self._rows([target_text(ex) for ex in examples])
        ids, mask, labels = self.llm.encode_train(texts, targets, max_length)  # [R, T]
        if thoughts is None:
            thoughts = self.thoughts(examples, n_thoughts, cache)  # [R, n, d_llm]
        return self.llm.splice(self.llm.embed(ids), ids, mask, thoughts, labels), mask, labels

    def loss(self, examples, n_thoughts=None, max_length=1024, cache=None):
        """Reply loss of the frozen LLM with the slots filled, plus `thought_penalty` (if any)."""
        if not self.trains:
            raise NotImplementedError(f"method {self.name!r} does not train")
        n = self.thought_count(n_thoughts)
        thoughts = self.thoughts(examples, n, cache)  # [R, n, d_llm]
        embeds, mask, labels = self.train_inputs(examples, n, max_length, thoughts=thoughts)
        loss = self.llm.reply_loss(embeds, mask, labels)
        penalty = self.thought_penalty(examples, thoughts)
        return loss if penalty is None else loss + penalty

    def thought_penalty(self, examples: list, thoughts: torch.Tensor) -> torch.Tensor | None:
        """An extra loss term on this batch's thoughts [R, n, d_llm] (SoftCoT++: chain diversity)."""
        return None
