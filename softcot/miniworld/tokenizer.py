"""Two different local Hugging Face fast tokenizers for the mini world (no downloads).

Both are byte-level BPE (any text encodes; nothing is ever unknown) with digits split one per
token, trained on the mini world's own texts so common words are single tokens. They differ on
purpose, like a real SoftCoT pair: vocab size and merges, special-token names and chat template.

    LLM        (Llama-style)  "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n..."
               end of turn "<|eot_id|>" (= EOS), pad "<|pad|>", placeholder "<|thought|>",
               thought markers "<|start_thought|>" / "<|end_thought|>"
    assistant  (ChatML-style) "<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n"
               end of turn "<|im_end|>" (= EOS), pad "<|endoftext|>", placeholder "<|placeholder|>",
               thought markers "<|bot|>" / "<|eot|>"

The names match what `softcot.frozen` looks for, so placeholders and markers resolve
automatically. Every special token is one id.
"""
from __future__ import annotations

from typing import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

LLM_SPECIALS = {
    "bos": "<|begin_of_text|>",
    "eos": "<|eot_id|>",
    "pad": "<|pad|>",
    "header_start": "<|start_header_id|>",
    "header_end": "<|end_header_id|>",
    "placeholder": "<|thought|>",
    "begin": "<|start_thought|>",
    "end": "<|end_thought|>",
}
ASSISTANT_SPECIALS = {
    "eos": "<|im_end|>",
    "pad": "<|endoftext|>",
    "im_start": "<|im_start|>",
    "placeholder": "<|placeholder|>",
    "begin": "<|bot|>",
    "end": "<|eot|>",
}

LLM_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for m in messages %}"
    "<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n{{ m['content'] | trim }}<|eot_id|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n{% endif %}"
)
ASSISTANT_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

LLM_VOCAB = 640
ASSISTANT_VOCAB = 440


def _train_bpe(texts: Iterable[str], vocab_size: int, specials: list[str]) -> Tokenizer:
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[AddedToken(s, special=True, normalized=False) for s in specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(list(texts), trainer=trainer)
    return tk


def _wrap(tk: Tokenizer, specials: dict, template: str, name: str) -> PreTrainedTokenizerFast:
    named = {"eos", "pad", "bos"}
    kwargs = {f"{k}_token": v for k, v in specials.items() if k in named}
    extra = [v for k, v in specials.items() if k not in named]
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        extra_special_tokens=extra,
        model_max_length=1024,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        name_or_path=name,
        **kwargs,
    )
    tok.chat_template = template
    return tok


def build_llm_tokenizer(texts: Iterable[str], vocab_size: int = LLM_VOCAB) -> PreTrainedTokenizerFast:
    tk = _train_bpe(texts, vocab_size, list(LLM_SPECIALS.values()))
    return _wrap(tk, LLM_SPECIALS, LLM_CHAT_TEMPLATE, "miniworld-llm")


def build_assistant_tokenizer(texts: Iterable[str], vocab_size: int = ASSISTANT_VOCAB) -> PreTrainedTokenizerFast:
    tk = _train_bpe(texts, vocab_size, list(ASSISTANT_SPECIALS.values()))
    return _wrap(tk, ASSISTANT_SPECIALS, ASSISTANT_CHAT_TEMPLATE, "miniworld-assistant")
