"""What tells a SoftCoT run that learns from one that does not, measured on a dev batch.

    d = diagnose(method, dev_examples, tcfg)   # before and after training
    {"thought_rms", "thought_cos", "pack_loss", "other_loss", "slot_attention", "token_readout"}

thought_rms     mean RMS of the projected thoughts (the LLM's token embeddings: `embedding_rms`)
thought_cos     mean cosine between the thoughts of different questions at the same slot: near 1
                means every question gets the same thoughts (nothing question-specific to read)
token_readout   share of slots whose projected thought's nearest LLM token embedding (cosine) is
                the LLM token of the string the assistant's LM head reads at that slot: does the
                LLM see the assistant's word?
pack_loss       dev reply loss on questions whose answer needs a fact only the assistant knows
other_loss      dev reply loss on the rest (the mini world's pack problems; `is_pack` elsewhere)
slot_attention  attention mass of the LLM's reply tokens on the thought slots (eager attention,
                mean over layers, heads and reply positions)
"""
from __future__ import annotations

import torch

from softcot.tasks import needs_assistant_fact

def is_pack(question: str, task: str = "miniworld") -> bool:
    """Whether the question needs the assistant's fact, as the task registry says (softcot.tasks)."""
    return bool(needs_assistant_fact(task, question))


@torch.no_grad()
def diagnose(method, examples: list, tcfg, limit: int = 96) -> dict:
    from softcot.bridge import assistant_readout
    from softcot.data import target_text
    from softcot.llm import IGNORE

    ex = examples[:limit]
    n = tcfg.n_range()[1] if not tcfg.train_n_mix else 4
    states = method.assistant.soft_thoughts(ex, n)  # [B, n, d_a]
    thoughts = method.projection(states)  # [B, n, d_llm]
    rms = float(thoughts.pow(2).mean(-1).sqrt().mean())
    t = torch.nn.functional.normalize(thoughts, dim=-1)  # [B, n, d]
    cos = torch.einsum("bnd,cnd->nbc", t, t)  # [n, B, B]
    B = len(ex)
    off = (cos.sum((1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(-1)) / (B * (B - 1))
    # the LLM token nearest each thought vs the LLM token of the assistant's own reading
    emb = method.llm.model.get_input_embeddings().weight.float()  # [V_l, d]
    nearest = (t @ torch.nn.functional.normalize(emb, dim=-1).T).argmax(-1)  # [B, n]
    _, words = assistant_readout(method.assistant, states.reshape(-1, states.shape[-1]), 1)  # [B*n, 1] (the bridge's reading)
    want = torch.tensor([_first_llm_id(method, int(w)) for w in words[:, 0]]).view(B, n)
    readout = float((nearest.cpu() == want).float().mean())
    # dev loss split by whether the question needs the assistant's fact
    losses = {True: [], False: []}
    for e in ex:
        losses[is_pack(e.question, e.task)].append(float(method.loss([e], n, tcfg.max_length)))
    # attention mass on the slots from the reply positions
    embeds, mask, labels = method.train_inputs(ex[:16], n, tcfg.max_length)
    model = method.llm.model
    prev = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        att = model.base_model(inputs_embeds=embeds, attention_mask=mask, output_attentions=True).attentions
    finally:
        model.set_attn_implementation(prev)
    tr_ids, _, _ = method.llm.encode_train(method.prompt_texts(ex[:16], n),
                                           [target_text(e) for e in ex[:16]], tcfg.max_length)
    slots = (tr_ids == method.llm.placeholder_id) & (labels == IGNORE) & mask.bool()  # [b, T]
    reply = labels != IGNORE  # [b, T]
    a = torch.stack(att).mean((0, 2))  # [layers, b, heads, T, T] -> [b, T(query), T(key)]
    mass = (a * slots.unsqueeze(1)).sum(-1)  # [b, T(query)]: attention on slot keys
    slot_att = float(mass[reply].mean())
    mean = lambda xs: sum(xs) / len(xs) if xs else float("nan")  # noqa: E731
    return {"thought_rms": round(rms, 4), "thought_cos": round(float(off.mean()), 4), "token_readout": round(readout, 4),
            "pack_loss": round(mean(losses[True]), 4), "other_loss": round(mean(losses[False]), 4),
            "slot_attention": round(slot_att, 4), "llm_embedding_rms": round(method.llm.embedding_rms, 4)}


def _first_llm_id(method, assistant_token: int) -> int:
    text = method.assistant.tok.decode([assistant_token])
    ids = method.llm.tok(text, add_special_tokens=False)["input_ids"] if text else []
    return ids[0] if ids else -1
