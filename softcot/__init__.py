"""softcot: SoftCoT (soft chain-of-thought) for frozen LLMs, its baselines, and SoftCoT++.

    from softcot import SoftCoTConfig, build_method, load_method, train
    method = build_method(SoftCoTConfig(assistant="path/to/small", llm="path/to/large"))

The data flow reads from the file list: assistant.py -> projection.py -> llm.py.
"""
__version__ = "0.1.0"

from softcot.config import DecodingConfig, SoftCoTConfig, TrainConfig  # noqa: E402
from softcot.errors import SoftCoTError  # noqa: E402


def __getattr__(name):  # lazy: importing softcot stays cheap for the CLI's --help
    if name in ("build_method", "load_method", "METHODS"):
        import softcot.methods as m

        return getattr(m, name)
    if name == "train":
        from softcot.train import train

        return train
    raise AttributeError(name)


__all__ = ["SoftCoTConfig", "TrainConfig", "DecodingConfig", "SoftCoTError", "build_method", "load_method", "train"]
