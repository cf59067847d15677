"""Errors whose message tells the user what to do (TensorFlow-free, for the CLI)."""


class DataNotFoundError(RuntimeError):
    """The data is neither on disk nor downloadable; the message says what to do."""


class SettingError(ValueError):
    """A bad command-line value or setting; the message is one line for the user."""


class CheckpointMismatch(SettingError):
    """Checkpoints that belong to a training with other settings; `changes` lists them
    (`"key: old -> new"`)."""

    def __init__(self, message, changes=()):
        super().__init__(message)
        self.changes = list(changes)
