"""Any tokenizer with zero flags (GPT-2: one special token for everything; GPT-NeoX: only
<|padding|> and <|endoftext|>), chat templates pinned to a fixed date, and generated-token counts
taken from the generated ids."""
import json
from datetime import datetime

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

from softcot.cli import main
from softcot.config import DecodingConfig, ModelConfig
from softcot.data import Example
from softcot.methods import build_method
from softcot.prompts import FIXED_DATE, render_prompt
from tests.tiny import char_tokenizer, llm_tokenizer


def gpt2_like(root):
    tok = char_tokenizer(["<|endoftext|>"])
    tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"  # and no pad token at all
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=2, n_head=4, n_positions=1024,
                                       bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(root / "gpt2")
    tok.save_pretrained(root / "gpt2")
    return str(root / "gpt2")


def neox_like(root):
    tok = char_tokenizer(["<|endoftext|>", "<|padding|>"], reverse=True)
    tok.bos_token = tok.eos_token = tok.unk_token = "<|endoftext|>"
    tok.pad_token = "<|padding|>"
    torch.manual_seed(1)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tok), hidden_size=24, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=48, max_position_embeddings=1024,
                                             bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(root / "neox")
    tok.save_pretrained(root / "neox")
    return str(root / "neox")


def test_gpt2_and_neox_need_no_placeholder_flags(tmp_path, capsys, caplog):
    llm, assistant = gpt2_like(tmp_path), neox_like(tmp_path)
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"question": f"What is {i} + 1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"}) + "\n"
                            for i in range(6)))
    with caplog.at_level("INFO", logger="softcot"):
        code = main(["train", "--assistant", assistant, "--llm", llm, "--train-file", str(data), "--output-dir",
                     str(tmp_path / "ck"), "--max-steps", "2", "--batch-size", "3", "--train-n-thoughts", "3",
                     "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    said = caplog.text
    assert "llm placeholder: '<|endoftext|>'" in said and "EOS token" in said  # GPT-2: the only choice, and why
    assert "assistant placeholder: '<|padding|>'" in said and "pad token" in said
    capsys.readouterr()
    code = main(["generate", "--checkpoint", str(tmp_path / "ck"), "--question", "What is 2 + 1?", "--max-new-tokens",
                 "4", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and json.loads(out)["answers"] and len(json.loads(out)["completions"]) == 1


DATED = ("{{ bos_token }}Today: {{ strftime_now('%d %b %Y') }}\n{% for m in messages %}<|start|>{{ m['role'] }}\n"
         "{{ m['content'] }}<|eot|>{% endfor %}{% if add_generation_prompt %}<|start|>assistant\n{% endif %}")


def test_templates_that_read_the_clock_are_pinned(monkeypatch):
    import transformers.utils.chat_template_utils as ctu

    tok = llm_tokenizer()
    tok.chat_template = DATED
    renders, raw = [], []
    for day in (datetime(2025, 1, 2), datetime(2031, 12, 30)):
        class Clock(datetime):
            @classmethod
            def now(cls, tz=None):
                return day

        monkeypatch.setattr(ctu, "datetime", Clock)
        ctu._cached_compile_jinja_template.cache_clear() if hasattr(ctu._cached_compile_jinja_template, "cache_clear") else None
        renders.append(render_prompt(tok, "hello"))
        raw.append(tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False,
                                           add_generation_prompt=True))
    assert raw[0] != raw[1]  # the clock really moved for an unpinned render
    assert renders[0] == renders[1] and f"Today: {FIXED_DATE}" in renders[0]


def test_token_counts_come_from_generated_ids(tiny_pair):
    a, l = tiny_pair
    m = build_method(ModelConfig(assistant=a, llm=l, n_thoughts=2), "cpu")
    ex = [Example(f"q{i}", "gsm8k", f"What is {i} + {i}?", str(2 * i)) for i in range(3)]
    free = m.generate(ex, DecodingConfig(max_new_tokens=6))
    assert all(0 <= c.tokens <= 6 for cs in free for c in cs)
    forced = m.generate(ex, DecodingConfig(max_new_tokens=5, min_new_tokens=5))
    assert [c.tokens for cs in forced for c in cs] == [5, 5, 5]
