"""SoftCoT++ (test-time scaling): K soft-thought chains per question. Chain k fills the
assistant's N placeholder slots with its own learnable initial-token embedding [INI]_k (in the
assistant's embedding space), so the frozen assistant yields K different thought sets; each goes
through the shared projection into its own LLM run. Answers of all chains (x samples) are returned
for the evaluation's majority vote.

    method = build_method(ModelConfig(method="softcot-pp", assistant="small", llm="large"))
    train(method, TrainConfig(train_n_thoughts=32, ...), examples)
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

from softcot.methods.base import SlotMethod
from softcot.methods.softcot import bridge_init, build_projection
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
    return table[assistant.placeholder_id].expand(k, -1) + noise * assistant.embedding_rms * torch.randn(k, table.shape[1])


def chain_contrastive(thoughts: torch.Tensor, tau: float) -> torch.Tensor:
    """InfoNCE over each question's chains. thoughts [B, K, N, d] -> scalar (0 when K = 1)."""
    B, K = thoughts.shape[:2]
    z = F.normalize(thoughts.float().mean(2), dim=-1)  # [B, K, d], one pooled vector per chain
    logits = z @ z.transpose(1, 2) / tau  # [B, K, K] cosine similarities / tau
    target = torch.arange(K, device=z.device).repeat(B)  # row (b, k): its positive is column k
    return F.cross_entropy(logits.reshape(B * K, K), target)


class SoftCoTPlusPlus(SlotMethod):
    name = "softcot-pp"
    description = "SoftCoT++: K soft-thought chains per question from learnable [INI]_k, contrastive, majority vote"
    trains_what = "projection + [INI]"
    needs_assistant = True
    weights_name = "softcot_pp.safetensors"

    def __init__(self, cfg, llm, assistant) -> None:
        super().__init__(cfg, llm, assistant)
        pp = cfg.softcot_pp
        self.rows_per_example = pp.num_chains  # one LLM row per chain (instance attribute: K is configured)
        ini = initial_ini(assistant, pp.num_chains, pp.ini_noise)
        self.trainable = ChainedProjection(build_projection(cfg, assistant, llm), ini).to(llm.model.device)

    def thoughts(self, examples, n: int, cache=None) -> torch.Tensor:
        """[B*K, n, d_llm]; row b*K + k is question b, chain k. The assistant runs with grad when
        grad is on (only the [INI] vectors require it), so nothing is cached (trap 5)."""
        states = self.assistant.soft_thoughts(examples, n, fill=self.trainable.ini, repeat=self.rows_per_example)
        return self.trainable.projection(states)

    @classmethod
    def bridges(cls, cfg) -> bool:
        return cfg.projection.kind == "linear"  # an MLP keeps its random init

    @torch.no_grad()
    def init_trainable(self, examples, n: int, how: str, cache=None, max_examples: int = 128) -> dict:
        """The vocabulary bridge (as SoftCoT's), fitted on the states of every chain's initial [INI]."""
        states = lambda batch: self.assistant.soft_thoughts(batch, n, fill=self.trainable.ini,  # noqa: E731
                                                            repeat=self.rows_per_example)
        return bridge_init(self.trainable.projection, self.assistant, self.llm, how, examples[:max_examples], states)

    def thought_penalty(self, examples, thoughts):
        """lambda * InfoNCE over each question's K chains. The reply loss (the base class's token
        mean over all B*K rows) already equals the mean over chains of each chain's loss, since
        every chain of a question has the same reply tokens."""
        K, w = self.rows_per_example, self.cfg.softcot_pp.contrastive_weight
        if K < 2 or w == 0:
            return None
        per_question = thoughts.view(len(examples), K, thoughts.shape[1], -1)  # [B, K, n, d_llm]
        return w * chain_contrastive(per_question, self.cfg.softcot_pp.contrastive_temperature)

    @property
    def num_chains(self) -> int:
        return self.rows_per_example
