"""Tiny random LMs and character tokenizers, built in-process (no download).

The LLM is Llama-style (hidden 32) and the assistant Qwen2-style (hidden 24), each with its own
tokenizer (different vocab order, special tokens and chat template), so projection-size,
tokenizer and dtype mix-ups fail loudly.
"""
from __future__ import annotations

import string
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

CHARS = list(string.printable[:95]) + ["\n"]

LLM_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|eot|>{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
)
ASSISTANT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def char_tokenizer(specials: list[str], reverse: bool = False, template: str | None = None, **named) -> PreTrainedTokenizerFast:
    chars = list(reversed(CHARS)) if reverse else CHARS
    vocab = {"<unk>": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()  # characters join without spaces
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", **named)
    fast.add_special_tokens({"additional_special_tokens": specials})
    if template:
        fast.chat_template = template
    return fast


def llm_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<|bos|>", "<|start|>", "<|eot|>", "<|pad|>", "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>", "<|reserved_special_token_2|>"]
    tok = char_tokenizer(specials, template=LLM_TEMPLATE)
    tok.bos_token, tok.eos_token, tok.pad_token = "<|bos|>", "<|eot|>", "<|pad|>"
    return tok


def assistant_tokenizer() -> PreTrainedTokenizerFast:
    specials = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|fim_pad|>"]
    tok = char_tokenizer(specials, reverse=True, template=ASSISTANT_TEMPLATE)
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"
    return tok


def build_llm(seed: int = 0) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    tok = llm_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), tok


def build_assistant(seed: int = 1) -> tuple[Qwen2ForCausalLM, PreTrainedTokenizerFast]:
    tok = assistant_tokenizer()
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=24, intermediate_size=48, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = tok.eos_token_id
    return model.eval(), tok


def save_pair(root: Path) -> tuple[str, str]:
    """Save both tiny models as ordinary HF folders; returns (assistant_dir, llm_dir)."""
    paths = []
    for name, build in (("assistant", build_assistant), ("llm", build_llm)):
        model, tok = build()
        d = root / name
        model.save_pretrained(d)
        tok.save_pretrained(d)
        paths.append(str(d))
    return paths[0], paths[1]
