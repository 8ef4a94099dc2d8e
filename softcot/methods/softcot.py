"""SoftCoT: assistant soft thoughts -> trainable projection -> the frozen LLM's thought slots.

    method = SoftCoT(cfg, llm, assistant)
    loss = method.loss(examples, n_thoughts=32)
    method.generate(examples, DecodingConfig(), n_thoughts=4)
"""
from __future__ import annotations

import torch

from softcot.data import Example, target_text
from softcot.methods.base import Method
from softcot.projection import Projection, load_reference_projection


def embedding_rms(llm) -> float:
    """Mean RMS of the LLM's token embeddings: the scale a projected thought should have."""
    w = llm.model.get_input_embeddings().weight.detach().float()
    return float(w.pow(2).mean(-1).sqrt().mean())


def build_projection(cfg, assistant, llm) -> Projection:
    """The projection a config describes, for this assistant/LLM pair (SoftCoT and SoftCoT++)."""
    return Projection(
        assistant.hidden_size, llm.hidden_size, kind=cfg.projection, hidden=cfg.projection_hidden,
        bias=cfg.projection_bias, norm=cfg.projection_norm, target_rms=embedding_rms(llm),
    ).to(llm.model.device)


class SoftCoT(Method):
    name = "softcot"
    needs_assistant = True
    weights_name = "projection.safetensors"

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        self.trainable = build_projection(cfg, assistant, llm)
        self._cache: dict[tuple[str, int], torch.Tensor] | None = None  # (example id, N) -> [N, d_a]

    @property
    def projection(self) -> Projection:
        return self.trainable

    # ---- soft thoughts -----------------------------------------------------------------------
    def prepare_training(self, examples: list[Example], n_thoughts: int) -> None:
        """The assistant is frozen, so each example's thoughts never change: cache them."""
        self._cache = {}

    def soft_thoughts(self, examples: list[Example], n: int) -> torch.Tensor:
        """[B, n, d_assistant] from the frozen assistant, through the cache when training."""
        if self._cache is None:
            return self.assistant.soft_thoughts(examples, n)
        missing = [ex for ex in examples if (ex.id, n) not in self._cache]
        if missing:
            for ex, t in zip(missing, self.assistant.soft_thoughts(missing, n)):
                self._cache[(ex.id, n)] = t
        return torch.stack([self._cache[(ex.id, n)] for ex in examples])

    def llm_thoughts(self, examples: list[Example], n: int) -> torch.Tensor:
        return self.projection(self.soft_thoughts(examples, n))  # [B, n, d_a] -> [B, n, d_llm] fp32

    # ---- inputs ------------------------------------------------------------------------------
    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))

    def generation_inputs(self, examples, n_thoughts):
        ids, mask = self.llm.encode_prompts(self.prompt_texts(examples, n_thoughts))
        embeds = self.llm.splice(self.llm.embed(ids), ids, mask, self.llm_thoughts(examples, n_thoughts))
        return embeds, mask  # [B, T, d_llm], [B, T]

    def train_inputs(self, examples, n_thoughts, max_length=1024):
        texts = self.prompt_texts(examples, n_thoughts)
        ids, mask, labels = self.llm.encode_train(texts, [target_text(ex) for ex in examples], max_length)
        embeds = self.llm.splice(self.llm.embed(ids), ids, mask, self.llm_thoughts(examples, n_thoughts))
        return embeds, mask, labels

    def load_reference(self, path) -> None:
        """Import the paper's `projection.bin` (Linear weight + bias)."""
        if self.cfg.projection != "linear" or self.cfg.projection_norm != "none":
            raise ValueError("a reference projection.bin is a plain Linear: use projection=linear, projection_norm=none")
        sd = load_reference_projection(path, self.assistant.hidden_size, self.llm.hidden_size)
        if "net.bias" not in sd and self.cfg.projection_bias:
            sd["net.bias"] = torch.zeros(self.llm.hidden_size)
        self.load_tensors(sd, str(path))
