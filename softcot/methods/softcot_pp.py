"""SoftCoT++ (test-time scaling): K soft-thought chains per question. Chain k fills the
assistant's N placeholder slots with its own learnable initial-token embedding [INI]_k (in the
assistant's embedding space), so the frozen assistant yields K different thought sets; each goes
through the shared projection into its own LLM run. Answers of all chains (x samples) are returned
for the evaluation's majority vote.

    method = build_method(SoftCoTConfig(method="softcot-pp", assistant="small", llm="large", num_chains=10))
    train(method, TrainConfig(n_thoughts=32, ...), examples)
    method.generate(examples, DecodingConfig(do_sample=True, num_samples=1))  # K completions per question

Trainable: the projection and the K [INI] vectors (fp32). The assistant runs WITH grad (its
weights stay frozen) so the gradient reaches the [INI] embeddings (the reference code runs it
under no_grad, so they never train: trap 5); for the same reason nothing is cached.

Loss = mean over chains of the reply loss + lambda * InfoNCE, where for each question
z_k = normalize(mean over the N projected thoughts of chain k), logits_kj = z_k . z_j / tau, and
chain k's positive is itself, its negatives the question's other chains: it pushes the K thought
sets apart. Rows are questions x chains, so any batch size works (the reference crashes at > 1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from softcot.config import DecodingConfig
from softcot.data import target_text
from softcot.methods.base import Method
from softcot.methods.softcot import build_projection
from softcot.projection import Projection


class ChainedProjection(nn.Module):
    """The trainable part: `projection` (as SoftCoT's) and `ini` [K, d_assistant]."""

    def __init__(self, projection: Projection, ini: torch.Tensor) -> None:
        super().__init__()
        self.projection = projection
        self.ini = nn.Parameter(ini.detach().float().clone())


def initial_ini(assistant, k: int, noise: float) -> torch.Tensor:
    """[K, d_a]: the assistant's placeholder embedding plus Gaussian noise at `noise` x the
    table's mean RMS, so the chains differ from the first step (equal chains would stay equal)."""
    table = assistant.model.get_input_embeddings().weight.detach().float()
    rms = table.pow(2).mean(-1).sqrt().mean()
    return table[assistant.placeholder_id].expand(k, -1) + noise * rms * torch.randn(k, table.shape[1])


def chain_contrastive(thoughts: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over each question's chains. thoughts [B, K, N, d] -> scalar (0 when K = 1)."""
    B, K = thoughts.shape[:2]
    z = F.normalize(thoughts.float().mean(2), dim=-1)  # [B, K, d], one pooled vector per chain
    logits = z @ z.transpose(1, 2) / tau  # [B, K, K] cosine similarities / tau
    target = torch.arange(K, device=z.device).repeat(B)  # row (b, k): its positive is column k
    return F.cross_entropy(logits.reshape(B * K, K), target)


class SoftCoTPlusPlus(Method):
    name = "softcot-pp"
    needs_assistant = True
    weights_name = "softcot_pp.safetensors"

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        projection = build_projection(cfg, assistant, llm)
        ini = initial_ini(assistant, cfg.num_chains, cfg.ini_noise)
        self.trainable = ChainedProjection(projection, ini).to(llm.model.device)

    @property
    def num_chains(self) -> int:
        """K: each question yields K x num_samples completions (read by evaluate.py)."""
        return self.cfg.num_chains

    # ---- soft thoughts, K chains per question ---------------------------------------------------
    def soft_thoughts(self, examples, n: int) -> torch.Tensor:
        """[B*K, n, d_a] assistant hidden states at the slots; row b*K + k is question b, chain k.
        Runs with grad when grad is enabled (only the INI embeddings require it)."""
        a, K = self.assistant, self.num_chains
        ids, mask = a.encode(a.prompts(examples, n), "right")  # [B, T]
        slots = (ids == a.placeholder_id) & mask.bool()
        counts = slots.sum(1)
        if not bool((counts == n).all()):
            raise ValueError(f"found {counts.tolist()} assistant placeholder tokens per row, expected {n}")
        emb = a.model.get_input_embeddings()(ids)  # [B, T, d_a]
        emb, mask, slots = (x.repeat_interleave(K, 0) for x in (emb, mask, slots))  # [B*K, T, ...]
        ini = self.trainable.ini.to(emb.dtype).repeat(len(examples), 1)  # [B*K, d_a], row b*K+k -> INI_k
        emb = torch.where(slots.unsqueeze(-1), ini.unsqueeze(1), emb)  # every slot of chain k = INI_k
        want_all = a.layer != -1
        out = a.model.base_model(inputs_embeds=emb, attention_mask=mask, output_hidden_states=want_all)
        h = out.hidden_states[a.layer] if want_all else out.last_hidden_state  # [B*K, T, d_a]
        return h[slots].view(len(examples) * K, n, -1)

    def llm_thoughts(self, examples, n: int) -> torch.Tensor:
        return self.trainable.projection(self.soft_thoughts(examples, n))  # [B*K, n, d_llm] fp32

    # ---- inputs (rows = questions x chains) ------------------------------------------------------
    def prompt_texts(self, examples, n_thoughts):
        return self.llm.prompt_texts(examples, self.llm.slots(n_thoughts))  # one per question

    def chain_rows(self, items: list) -> list:
        return [x for x in items for _ in range(self.num_chains)]

    def generation_inputs(self, examples, n_thoughts):
        """[B*K, T, d_llm] embeddings and mask: K chains per question, example-major."""
        ids, mask = self.llm.encode_prompts(self.chain_rows(self.prompt_texts(examples, n_thoughts)))
        return self.llm.splice(self.llm.embed(ids), ids, mask, self.llm_thoughts(examples, n_thoughts)), mask

    def train_inputs(self, examples, n_thoughts, max_length=1024, thoughts=None):
        texts = self.chain_rows(self.prompt_texts(examples, n_thoughts))
        targets = self.chain_rows([target_text(ex) for ex in examples])
        ids, mask, labels = self.llm.encode_train(texts, targets, max_length)
        thoughts = self.llm_thoughts(examples, n_thoughts) if thoughts is None else thoughts
        return self.llm.splice(self.llm.embed(ids), ids, mask, thoughts), mask, labels

    # ---- the two workflows -------------------------------------------------------------------------
    def loss(self, examples, n_thoughts=None, max_length=1024):
        n = n_thoughts or self.cfg.n_thoughts
        thoughts = self.llm_thoughts(examples, n)  # [B*K, n, d_llm]
        embeds, mask, labels = self.train_inputs(examples, n, max_length, thoughts)
        # Every chain of a question has the same reply tokens, so the token mean over all B*K rows
        # equals the mean over chains of each chain's reply loss.
        reply = self.llm.reply_loss(embeds, mask, labels)
        if self.num_chains < 2 or self.cfg.contrastive_weight == 0:
            return reply
        cl = chain_contrastive(thoughts.view(len(examples), self.num_chains, n, -1), self.cfg.contrastive_temperature)
        return reply + self.cfg.contrastive_weight * cl

    @torch.no_grad()
    def generate(self, examples, dec: DecodingConfig, n_thoughts=None) -> list[list[str]]:
        """K chains x dec.num_samples completions per question (chain-major)."""
        embeds, mask = self.generation_inputs(examples, n_thoughts or self.cfg.n_thoughts)
        rows = self.llm.generate(embeds, mask, dec)  # B*K lists of num_samples
        K = self.num_chains
        return [[c for r in rows[b * K : (b + 1) * K] for c in r] for b in range(len(examples))]
