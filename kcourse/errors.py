"""Errors whose message tells the user what to do (TensorFlow-free, for the CLI)."""


class DataNotFoundError(RuntimeError):
    """The data is neither on disk nor downloadable; the message says what to do."""


class SettingError(ValueError):
    """A bad command-line value or setting; the message is one line for the user."""
