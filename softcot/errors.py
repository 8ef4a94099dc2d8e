"""Errors that the CLI turns into one clear line and a non-zero exit code."""


class SoftCoTError(Exception):
    """Base class: the message is one line naming what is wrong and what was expected."""


class ConfigError(SoftCoTError, ValueError):
    """A setting (argument, config file, preset) is invalid."""


class ModelLoadError(SoftCoTError):
    """A model or tokenizer could not be loaded, or does not fit the checkpoint."""


class CheckpointError(SoftCoTError):
    """A checkpoint is missing, unreadable, or does not fit the chosen models."""
