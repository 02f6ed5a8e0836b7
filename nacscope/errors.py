"""Errors that reach the user as one line (the CLI prints them without a traceback)."""


class NacscopeError(Exception):
    """Base class: a problem with the user's input or environment, stated in one line."""


class CodeSetError(NacscopeError):
    """A file is missing, not HDF5, corrupt, or not a valid code set."""


class CheckpointError(NacscopeError):
    """A checkpoint is missing, unreadable, unsafe, or of another architecture."""


class DataError(NacscopeError):
    """A dataset is unknown, missing, or in the wrong format."""


class OptionError(NacscopeError):
    """A command-line option has a bad value."""
