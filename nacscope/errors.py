"""Errors that reach the user as one line (the CLI prints them without a traceback)."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Iterator, Mapping


class NacscopeError(Exception):
    """Base class: a problem with the user's input or environment, stated in one line."""


class CodeSetError(NacscopeError):
    """A file is missing, not HDF5, corrupt, or not a valid code set."""


class CheckpointError(NacscopeError):
    """A checkpoint is missing, unreadable, unsafe, or of another architecture."""


class DataError(NacscopeError):
    """A dataset is unknown, missing, or in the wrong format."""


class OptionError(NacscopeError):
    """A parameter (a command-line option) has a bad value.

    With ``option`` (the library's parameter name, e.g. ``batch_size``) the message reads
    ``batch_size must be >= 2, got 0`` in Python and ``--batch-size must be >= 2, got 0`` on the command line
    (:meth:`for_cli`), so the library validates once and speaks in its own names.
    """

    def __init__(self, message: str, *, option: str | None = None) -> None:
        self.option, self.detail = option, message
        super().__init__(f"{option} {message}" if option else message)

    def for_cli(self, flags: Mapping[str, str] | None = None) -> str:
        """The message with the parameter as its flag (``flags`` maps names spelt otherwise)."""
        if not self.option:
            return str(self)
        flag = (flags or {}).get(self.option) or "--" + self.option.replace("_", "-")
        return f"{flag} {self.detail}"


def require(ok: bool, option: str, message: str) -> None:
    """Raise ``OptionError(message, option=option)`` unless ``ok``."""
    if not ok:
        raise OptionError(message, option=option)


@contextmanager
def quiet_library_warnings() -> Iterator[None]:
    """Silence, for a block, the notes libraries print that are not the user's business: deprecation and
    future warnings, and torch's own UserWarnings (narrowly: the caller's filters are restored after)."""
    with warnings.catch_warnings():
        for category in (DeprecationWarning, FutureWarning):
            warnings.simplefilter("ignore", category)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(\.|$)")
        yield
