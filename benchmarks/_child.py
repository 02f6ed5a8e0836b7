"""Run one benchmark case in a fresh Python process, to measure its time and its own peak memory.

Used by ``benchmarks/retrieval.py`` and ``benchmarks/distinct.py``: the parent calls
``run_child(script, case, args)`` (or ``run_cases`` for several); the script, started with ``--child CASE``, builds its inputs,
calls ``report(fn)``, which prints one JSON line with the wall time of ``fn()`` and the growth of the
process's peak resident memory during it (``ru_maxrss`` after minus current RSS before).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from typing import Any, Callable


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _hwm_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(fn: Callable[[], Any], extra: Callable[[Any], dict] | None = None) -> None:
    """Time ``fn()`` once and print ``{"seconds", "peak_mib", ...extra(result)}`` as JSON.

    ``peak_mib`` is the peak resident memory during ``fn()`` above the memory held before it (the
    inputs): the peak is reset first through ``/proc/self/clear_refs``.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS
    except OSError:
        pass
    before = _rss_mib()
    t = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak_mib": max(0.0, _hwm_mib() - before), **(extra(out) if extra else {})}))


def run_cases(script: str, cases: str, args: list[str]) -> dict[str, dict]:
    """Run each case of the comma-separated ``cases`` with :func:`run_child`, echoing results on stderr."""
    res = {}
    for case in cases.split(","):
        res[case] = run_child(script, case, args)
        print(f"{case}: {res[case]}", file=sys.stderr, flush=True)
    return res


def run_child(script: str, case: str, args: list[str]) -> dict:
    """Run ``python script --child case *args`` and return its JSON line."""
    proc = subprocess.run([sys.executable, script, "--child", case, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
