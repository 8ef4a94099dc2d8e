"""The frozen assistant: reads [instruction, question, N placeholders] and returns its hidden
states at the placeholder slots, the "soft thoughts" [B, N, d_assistant].

    asst = Assistant(model, tokenizer)
    thoughts = asst.soft_thoughts(examples, n=4)        # [B, 4, d_assistant]
    hints = asst.write_hints(examples, max_new_tokens=64)  # Assist-CoT: hard-text hints

Only the base model runs (no LM head: its logits would be thrown away, trap 4). Slots are found
by token id in the tokenized prompt, never by template arithmetic (trap 3). Prompts are right
padded so every row's positions start at 0, whatever the model's position-id handling.
"""
from __future__ import annotations

import torch

from softcot.data import Example
from softcot.frozen import model_device, resolve_placeholder, single_token_id
from softcot.prompts import assistant_message, end_of_turn_text, render_prompt


class Assistant:
    def __init__(self, model, tokenizer, *, placeholder: str | None = None, layer: int = -1) -> None:
        self.model, self.tok, self.layer = model, tokenizer, layer
        self.placeholder, self.placeholder_id = resolve_placeholder(tokenizer, placeholder, "assistant")
        self.hidden_size: int = model.get_input_embeddings().weight.shape[1]
        n_layers = model.config.get_text_config().num_hidden_layers
        if not -(n_layers + 1) <= layer <= n_layers:
            raise ValueError(f"assistant_layer {layer} out of range for a {n_layers}-layer assistant (use -1..{n_layers})")

    def prompts(self, examples: list[Example], n: int | None) -> list[str]:
        ph = self.placeholder * n if n else None
        return [render_prompt(self.tok, assistant_message(ex, placeholders=ph)) for ex in examples]

    def encode(self, texts: list[str], padding_side: str) -> tuple[torch.Tensor, torch.Tensor]:
        self.tok.padding_side = padding_side
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        dev = model_device(self.model)
        return enc["input_ids"].to(dev), enc["attention_mask"].to(dev)

    @torch.no_grad()
    def soft_thoughts(self, examples: list[Example], n: int) -> torch.Tensor:
        """Hidden states at the N placeholder slots: [B, n, d_assistant], in the model's dtype."""
        ids, mask = self.encode(self.prompts(examples, n), "right")  # [B, T]
        slots = (ids == self.placeholder_id) & mask.bool()  # [B, T]
        counts = slots.sum(1)
        if not bool((counts == n).all()):
            bad = int((counts != n).nonzero()[0, 0])
            raise ValueError(
                f"example {examples[bad].id!r}: found {int(counts[bad])} assistant placeholder tokens "
                f"{self.placeholder!r}, expected {n} (does the question contain that token?)"
            )
        want_all = self.layer != -1
        out = self.model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=want_all)
        h = out.hidden_states[self.layer] if want_all else out.last_hidden_state  # [B, T, d_a]
        # Boolean indexing walks rows in order, so the slots come back as [B*n, d_a] -> [B, n, d_a].
        return h[slots].view(len(examples), n, -1)

    @torch.no_grad()
    def write_hints(self, examples: list[Example], max_new_tokens: int = 64) -> list[str]:
        """Assist-CoT: the assistant writes a short hard-text hint (greedy) for each question."""
        ids, mask = self.encode(self.prompts(examples, None), "left")
        stop = {i for i in [self.tok.eos_token_id, single_token_id(self.tok, end_of_turn_text(self.tok))] if i is not None}
        gen_eos = self.model.generation_config.eos_token_id
        stop |= set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
            eos_token_id=sorted(stop), pad_token_id=self.tok.pad_token_id,
            temperature=None, top_p=None, top_k=None,
        )
        return [t.strip() for t in self.tok.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)]
