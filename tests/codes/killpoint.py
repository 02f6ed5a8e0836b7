"""Run ``nacscope ARGS`` and SIGKILL the process just before its K-th write event (for ``test_kill.py``).

``python -m tests.codes.killpoint ARGS...`` with environment:

* ``NACSCOPE_TEST_KILL_DIR``: only writes under this folder count;
* ``NACSCOPE_TEST_KILL_AT``: K >= 1 kills before event K; 0 runs to the end;
* ``NACSCOPE_TEST_EVENTS``: a file that receives one line per event (``kind path``), flushed as it goes.

Write events are the Python-level ones (``open`` for writing, ``os.rename``/``os.replace``, ``os.remove``,
``os.truncate``, ``os.chmod``, seen through an audit hook) and the HDF5 ones (file opened for writing,
group or dataset created, dataset written or resized, attribute set, member copied, flush, close),
seen by wrapping h5py's methods. The kill is a real ``SIGKILL``: no handler, no ``finally``, no atexit.
"""

from __future__ import annotations

import functools
import os
import signal
import sys

_DIR = os.path.realpath(os.environ.get("NACSCOPE_TEST_KILL_DIR", "/nonexistent"))
_AT = int(os.environ.get("NACSCOPE_TEST_KILL_AT", "0"))
_LOG = os.environ.get("NACSCOPE_TEST_EVENTS")
_count = 0
_log = open(_LOG, "a", buffering=1) if _LOG else None  # noqa: SIM115 - lives as long as the process
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _ours(path) -> bool:
    try:
        p = os.fsdecode(path) if not isinstance(path, int) else ""
    except TypeError:
        return False
    return bool(p) and os.path.realpath(p).startswith(_DIR + os.sep)


def event(kind: str, path) -> None:
    global _count
    _count += 1
    if _log is not None:
        _log.write(f"{kind} {os.path.basename(os.fsdecode(path)) if path else ''}\n")
    if _count == _AT:
        os.kill(os.getpid(), signal.SIGKILL)


def _audit(name: str, args) -> None:
    if name == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writing and _ours(path):
            event("open", path)
    elif name in ("os.rename", "os.remove", "os.truncate", "os.chmod") and args and _ours(args[0]):
        event(name, args[0])


def _wrap(cls, method: str, kind: str, file_of, when=lambda *a, **k: True) -> None:
    orig = getattr(cls, method)

    @functools.wraps(orig)
    def wrapper(self, *args, **kwargs):
        try:
            target = file_of(self, *args, **kwargs)
        except Exception:  # noqa: BLE001 - an object that cannot say its file: not ours
            target = None
        if target is not None and _ours(target) and when(self, *args, **kwargs):
            event(kind, target)
        return orig(self, *args, **kwargs)

    setattr(cls, method, wrapper)


def _install_h5py() -> None:
    import h5py

    def fname(obj, *a, **k):
        return obj.file.filename

    def writable(obj, *a, **k):
        return obj.file.mode == "r+"

    _wrap(h5py.File, "__init__", "h5.open", lambda self, name, mode="r", *a, **k: name if mode != "r" else None)
    _wrap(h5py.File, "flush", "h5.flush", fname)
    _wrap(h5py.File, "close", "h5.close", lambda self: self.filename if self.id.valid and self.mode == "r+" else None)
    _wrap(h5py.Group, "create_group", "h5.group", fname)
    _wrap(h5py.Group, "create_dataset", "h5.dataset", fname)
    _wrap(h5py.Group, "copy", "h5.copy", lambda self, source, dest, *a, **k: dest.file.filename
          if hasattr(dest, "file") else self.file.filename)
    _wrap(h5py.Dataset, "__setitem__", "h5.write", fname)
    _wrap(h5py.Dataset, "resize", "h5.resize", fname)
    _wrap(h5py.AttributeManager, "__setitem__", "h5.attr", lambda self, *a: self._id.file.name, )


def main() -> None:
    sys.addaudithook(_audit)
    _install_h5py()
    from nacscope.cli import main as cli_main

    sys.argv = ["nacscope", *sys.argv[1:]]
    cli_main()


if __name__ == "__main__":
    main()
