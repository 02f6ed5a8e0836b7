"""An exclusive lock file (``flock``): one writer at a time, others wait a bounded time.

Used by :mod:`nacscope.codes.cache` for ``<code set>.cache.lock``. The lock is held by an open file
descriptor, so a killed holder releases it at once; the file itself stays (it is never the data).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from nacscope.errors import CodeSetError

#: Longest a writer waits for another process's write before giving up with one line.
LOCK_TIMEOUT_S = 120.0


class FileLock:
    """``with FileLock(path):`` holds an exclusive ``flock`` on ``path`` (created, never followed if a symlink).

    Raises:
        CodeSetError: another process held it for more than ``timeout`` seconds (default
            :data:`LOCK_TIMEOUT_S`, read when the lock is taken, so tests can shorten it).
    """

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path, self.fd, self.timeout = Path(path), -1, timeout

    def __enter__(self) -> "FileLock":
        timeout = LOCK_TIMEOUT_S if self.timeout is None else self.timeout
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    os.close(self.fd)
                    what = self.path.name[:-5] if self.path.name.endswith(".lock") else self.path.name
                    raise CodeSetError(f"another process has been writing {what} for over {timeout:.0f} s") from None
                time.sleep(0.05)

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # closing releases the lock
