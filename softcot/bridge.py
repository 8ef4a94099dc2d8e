"""The vocabulary bridge: a label-free starting point for SoftCoT's projection.

A random projection starts where the frozen LLM cannot read it, and whether training finds the
way in depends on the seed (on the mini world, 1 run in 3 never does). Both frozen LMs already
share one language: the assistant's LM head reads a slot state as tokens, and the LLM's input
embeddings of the same strings bring them back in. This module fits the projection's Linear to
that composition by least squares, so training starts from thoughts the LLM reads as the words
the assistant would have written there:

    states X [K, d_a]  (the assistant's slot states for training questions; no labels used)
    P = top-k softmax(head_a(X))           [K, V_a]   what the assistant would write at the slot
    Y = P @ bridge(E_llm)                   [K, d_llm] the LLM's embeddings of those strings
    W, b = argmin |X W^T + b - Y|^2 + ridge |W|^2

`bridge(E_llm)[t]` is the mean LLM input embedding of the LLM tokens of assistant token t's
string (the two tokenizers differ; only the strings are shared). Works for any pair of causal
LMs; cost: one forward of the frozen assistant over `max_examples` questions (or the trainer's
thought cache), the LM head over them in chunks, and one [d_a, d_a] solve.
"""
from __future__ import annotations

import torch

from softcot.utils import log


def _token_bridge(assistant, llm, token_ids: torch.Tensor) -> torch.Tensor:
    """[U] assistant token ids -> [U, d_llm] LLM embeddings of the same strings."""
    emb = llm.model.get_input_embeddings().weight.detach().float()  # [V_l, d_llm]
    out = torch.zeros(len(token_ids), emb.shape[1])
    for i, t in enumerate(token_ids.tolist()):
        text = assistant.tok.decode([t])
        ids = llm.tok(text, add_special_tokens=False)["input_ids"] if text else []
        if ids:
            out[i] = emb[ids].mean(0).cpu()
    return out  # strings the LLM cannot spell (empty special tokens) stay 0: no direction


@torch.no_grad()
def assistant_readout(assistant, states: torch.Tensor, top_k: int, chunk: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """What the assistant's LM head reads at each slot state [K, d_a]: the top-k token ids and
    their renormalised probabilities, both [K, k]. Computed in chunks of rows, so the full
    [K, vocab] logits never exist at once (K = 512 x 32 slots x a 150k vocabulary would be GBs)."""
    head = assistant.model.get_output_embeddings().weight.detach()  # [V_a, d_a]
    norm = getattr(assistant.model.base_model, "norm", None)
    n_layers = assistant.model.config.get_text_config().num_hidden_layers
    inner = assistant.layer not in (-1, n_layers)  # an inner layer is read through the final norm (the logit lens)
    if inner and norm is None:
        log.warning("vocabulary bridge: the assistant has no final norm at .norm; reading layer %d's states as they are",
                    assistant.layer)
    probs, ids = [], []
    for i in range(0, len(states), chunk):
        x = states[i : i + chunk].to(head.device, head.dtype)
        if inner and norm is not None:
            x = norm(x)
        logp = (x @ head.T).float().log_softmax(-1)  # [c, V_a]
        top, tok = logp.topk(top_k, dim=-1)  # [c, k]
        probs.append(top.softmax(-1).cpu())  # renormalised over the k tokens
        ids.append(tok.cpu())
    return torch.cat(probs), torch.cat(ids)


@torch.no_grad()
def vocab_bridge_fit(assistant, llm, states: torch.Tensor, top_k: int = 16, ridge: float = 1e-2) -> dict[str, torch.Tensor]:
    """Least-squares Linear weights {"net.weight": [d_llm, d_a], "net.bias": [d_llm]} from the
    assistant's slot states [K, d_a] (see the module docstring), and the fit's R^2."""
    X = states.float().cpu()  # [K, d_a]: the projection's own inputs (raw states, whatever the layer)
    probs, tok = assistant_readout(assistant, states, top_k)  # [K, k] each
    uniq, inv = tok.unique(return_inverse=True)  # only the tokens some slot would write
    E = _token_bridge(assistant, llm, uniq)  # [U, d_llm]
    Y = (probs.unsqueeze(-1) * E[inv]).sum(1)  # [K, d_llm]
    # ridge regression with an unpenalised bias: centre, solve [d_a, d_a], recover the bias
    mx, my = X.mean(0), Y.mean(0)
    Xc, Yc = X - mx, Y - my
    A = Xc.T @ Xc  # [d_a, d_a]
    lam = max(ridge * float(A.diagonal().mean()), 1e-6)  # a floor: identical states leave A = 0
    W = torch.linalg.solve(A + lam * torch.eye(A.shape[0]), Xc.T @ Yc).T  # [d_llm, d_a]
    b = my - W @ mx
    fit = 1 - float((X @ W.T + b - Y).pow(2).sum() / Yc.pow(2).sum().clamp_min(1e-12))
    log.info("vocabulary-bridge init: %d slot states, %d distinct assistant tokens, R^2 %.3f", len(X), len(uniq), fit)
    return {"net.weight": W, "net.bias": b, "r2": torch.tensor(fit)}
