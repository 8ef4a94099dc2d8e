"""Every bundled YAML preset parses into the typed configs; bad settings give one clear line."""
import pytest

from softcot.config import DecodingConfig, SoftCoTConfig, TrainConfig, bundled_presets, from_dict, load_yaml_preset
from softcot.errors import ConfigError
from softcot.evaluate import EvalConfig

SECTIONS = {"model": SoftCoTConfig, "train": TrainConfig, "eval": EvalConfig, "decoding": DecodingConfig}


@pytest.mark.parametrize("name", bundled_presets())
def test_bundled_preset_builds_every_section(name):
    data = load_yaml_preset(name)
    assert set(data) <= set(SECTIONS) and "eval" in data
    for section, cls in SECTIONS.items():
        if section in data:
            from_dict(cls, data[section], source=name)
    ev = from_dict(EvalConfig, data["eval"])
    if name == "miniworld":  # the demo's recipe (tests/test_recipe.py), not a paper setting
        assert ev.seeds == [41, 42, 43] and "miniworld/assets" in data["model"]["llm"]
        return
    assert ev.seeds == [41, 42, 43, 44, 45]  # the paper's five seeds
    if "train" in data:
        assert from_dict(TrainConfig, data["train"]).train_n_thoughts == 32 and data["model"]["n_thoughts"] == 4
        assert data["train"]["projection_init"] == "random"  # the paper's randomly initialised Linear


def test_presets_cover_both_pairs_and_all_five_tasks():
    names = bundled_presets()
    for pair in ("llama", "qwen"):
        for task in ("gsm8k", "asdiv-aug", "aqua", "strategyqa", "date"):
            assert f"paper-{pair}-{task}" in names


def test_unknown_key_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="unknown key\\(s\\) \\['lr_rate'\\]"):
        from_dict(TrainConfig, {"lr_rate": 1})
    with pytest.raises(ConfigError, match="top_p must be in"):
        DecodingConfig(top_p=0)
    with pytest.raises(ConfigError, match="num_samples > 1 needs sampling"):
        DecodingConfig(num_samples=3)
    with pytest.raises(ConfigError, match="expected integers"):
        EvalConfig(seeds="41-x")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml_preset(bad)
    with pytest.raises(ConfigError, match="preset not found"):
        load_yaml_preset(tmp_path / "nope.yaml")
    round_trip = tmp_path / "c.json"
    SoftCoTConfig(assistant="a", llm="b", n_thoughts=6).to_json(round_trip)
    assert SoftCoTConfig.from_json(round_trip).n_thoughts == 6
