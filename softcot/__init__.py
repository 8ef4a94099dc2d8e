"""softcot: SoftCoT (soft chain-of-thought) for frozen LLMs, its baselines, and SoftCoT++.

    from softcot import ModelConfig, build_method, load_method, train, evaluate
    method = build_method(ModelConfig(assistant="path/to/small", llm="path/to/large"))

The data flow reads from the file list: assistant.py -> projection.py -> llm.py.
"""
__version__ = "0.1.0"

from softcot.config import DecodingConfig, EvalConfig, ModelConfig, SoftCoTConfig, TrainConfig  # noqa: E402
from softcot.errors import SoftCoTError  # noqa: E402


def __getattr__(name):  # lazy: importing softcot stays cheap for the CLI's --help
    if name in ("build_method", "load_method", "METHODS"):
        import softcot.methods as m

        return getattr(m, name)
    if name == "train":
        from softcot.train import train

        return train
    if name == "evaluate":
        from softcot.evaluate import evaluate

        return evaluate
    raise AttributeError(name)


__all__ = ["ModelConfig", "EvalConfig", "SoftCoTConfig", "TrainConfig", "DecodingConfig", "SoftCoTError", "build_method", "load_method", "train"]
