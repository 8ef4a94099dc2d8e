"""Errors that the CLI turns into one clear line and a non-zero exit code."""


class SoftCoTError(Exception):
    """Base class: the message is one line naming what is wrong and what was expected."""


class ConfigError(SoftCoTError, ValueError):
    """A setting (argument, config file, preset) is invalid."""


class ModelLoadError(SoftCoTError):
    """A model or tokenizer could not be loaded, or does not fit the checkpoint."""


class CheckpointError(SoftCoTError):
    """A checkpoint is missing, unreadable, or does not fit the chosen models."""


class DiskFull(SoftCoTError):
    """No space left on the device (or the quota is spent) while writing `path`: the message says
    which file and what is still intact (utils.reporting_full_disk builds it)."""

    def __init__(self, path, note: str = ""):
        self.path = path
        super().__init__(f"no space left on device while writing {path}" + (f"; {note}" if note else ""))


class FolderInUse(SoftCoTError):
    """The output folder is held by another live run (softcot.lock)."""
