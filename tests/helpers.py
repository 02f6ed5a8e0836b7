"""Helpers shared by the tests: random ReLU codes of real data, bad code-set files, running the CLI, imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from typer.testing import CliRunner, Result

runner = CliRunner()

#: Environment variable that multiplies every hang guard below (a slow or heavily loaded machine: raise it).
TIME_SCALE_ENV = "NACSCOPE_TEST_TIME_SCALE"


def time_scale() -> float:
    """The factor in ``$NACSCOPE_TEST_TIME_SCALE`` (default 1; must be a positive number)."""
    raw = os.environ.get(TIME_SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r} is not a number") from None
    if not scale > 0:
        raise ValueError(f"{TIME_SCALE_ENV}={raw!r} must be positive")
    return scale


def hang_guard(seconds: float = 600.0) -> float:
    """A limit that only stops a hung test: ``seconds`` (generous, >= 10x a loaded run) times the scale.

    Tests wait on events (a line on a pipe, a file appearing, a process exiting); this bound only turns a
    hang into a failure instead of a stuck CI job. It is never a performance assertion.
    """
    return seconds * time_scale()


def random_relu_codes(x: np.ndarray, widths=(64, 32), seed: int = 0) -> dict[str, np.ndarray]:
    """Activation patterns of a fixed random ReLU MLP on ``x``: {"fc1": (N, w1) bool, ...}."""
    rng = np.random.default_rng(seed)
    h = (x - x.mean(0)) / (x.std(0) + 1e-6)
    out = {}
    for i, w in enumerate(widths):
        W = rng.normal(size=(h.shape[1], w)) / np.sqrt(h.shape[1])
        b = rng.normal(size=w) * 0.1
        pre = h @ W + b  # (N, w)
        out[f"fc{i + 1}"] = pre > 0
        h = np.maximum(pre, 0)
    return out


def invoke(*args) -> Result:
    """Run ``nacscope ARGS`` in-process (arguments turned to str); no traceback may appear."""
    from nacscope.cli import app

    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    return result


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """The command failed with exit 2 and one ``error: ...`` line holding every fragment.

    Fragments are looked for with whitespace collapsed (a terminal may wrap the line).
    """
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error:"), text
    assert all(line.strip() for line in result.output.strip().splitlines()), result.output  # no blank lines
    for frag in fragments:
        assert frag in text, text


def modules_loaded_by(statement: str, modules) -> list[str]:
    """Which of ``modules`` a fresh interpreter has imported after running ``statement``."""
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    code = f"{statement}\nimport sys\nprint(' '.join(m for m in {list(modules)!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=hang_guard())
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def write_bad_codeset(path: Path, case: str, good: Path | None = None, *, version: int = 99) -> Path:
    """Make ``path`` something that is not a readable code set, of the kind ``case`` names; returns ``path``.

    Cases: ``missing`` (nothing written), ``directory``, ``not_hdf5`` (text), ``truncated`` (the first
    third of ``good``, a complete code set), ``not_codeset`` (a plain HDF5 file), ``newer_version``
    (a code set header claiming format ``version``), ``no_layers_group`` (a v1 header and nothing else).
    """
    import h5py

    if case == "directory":
        path.mkdir()
    elif case == "not_hdf5":
        path.write_text("not hdf5")
    elif case == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif case == "not_codeset":
        with h5py.File(path, "w") as f:
            f["x"] = np.arange(3)
    elif case in ("newer_version", "no_layers_group"):
        with h5py.File(path, "w") as f:
            f.attrs["format"] = "nacscope.codeset"
            f.attrs["format_version"] = version if case == "newer_version" else 1
    elif case != "missing":
        raise ValueError(f"unknown case {case!r}")
    return path


def reference_map(q_bits: np.ndarray, g_bits: np.ndarray, q_y: np.ndarray, g_y: np.ndarray, *,
                  R: int | None = None, rank: str = "hamming", exclude_self: bool = False) -> float:
    """mAP written from the definition with numpy only (an independent reference for the library's).

    Each query ranks the gallery by Hamming distance (``rank="dot"``: by minus the inner product), ties by
    gallery index; with ``exclude_self`` query i is gallery item i and is left out. AP over the top ``R``
    (all when None) = the mean of precision@k over the ranks k of relevant items within the top R; 0 when
    there is none. Class labels: relevant = same label.
    """
    q, g = q_bits.astype(np.int64), g_bits.astype(np.int64)  # (Q, D), (G, D)
    if rank == "hamming":
        keys = (q[:, None, :] != g[None, :, :]).sum(-1)  # (Q, G)
    else:
        keys = -(q @ g.T)  # (Q, G)
    aps = []
    for i in range(len(q)):
        key = keys[i].astype(np.float64)
        if exclude_self:
            key[i] = np.inf  # ranks last, then is cut off
        order = np.argsort(key, kind="stable")[: len(g) - exclude_self]  # by key, ties by index
        rel = (g_y[order] == q_y[i])[:R]
        ranks = np.flatnonzero(rel) + 1
        aps.append(float((np.arange(1, len(ranks) + 1) / ranks).mean()) if len(ranks) else 0.0)
    return float(np.mean(aps))
