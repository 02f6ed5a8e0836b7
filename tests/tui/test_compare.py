"""Compare in the TUI: several code sets of the same samples side by side (rows matched by sample index)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from nacscope.errors import CodeSetError
from tests.helpers import random_relu_codes
from tests.tui.test_app import wait_for


def write_seeded(path: Path, seed: int, *, rows: np.ndarray | None = None, dataset: str = "digits") -> Path:
    """Digits through a random ReLU MLP of ``seed``; ``rows``: which digits (in that order) the file holds."""
    from sklearn.datasets import load_digits

    from nacscope.codes import CodeSetWriter, LayerSpec

    x, y = load_digits(return_X_y=True)
    codes = random_relu_codes(x, (24, 12), seed)
    names = list(codes)
    layers = {"fc1": codes[names[0]], "code": codes[names[1]]}
    rows = np.arange(len(y)) if rows is None else rows
    specs = [LayerSpec("fc1", 24, kind="relu"), LayerSpec("code", 12, kind="code")]
    with CodeSetWriter(path, specs, label_kind="class", attrs={"dataset": dataset, "split": "all"}) as w:
        w.append({k: v[rows] for k, v in layers.items()}, labels=y[rows].astype(np.int64), index=rows)
    return path


def brute_neighbours(bits: np.ndarray, row: int, k: int) -> list[tuple[int, int]]:
    """k nearest rows of ``row`` by a plain Hamming count (ties by row), itself excluded."""
    d = (bits != bits[row]).sum(1)
    order = sorted((int(d[j]), j) for j in range(len(bits)) if j != row)[:k]
    return [(j, dist) for dist, j in order]


@pytest.fixture
def pair(tmp_path):
    a = write_seeded(tmp_path / "a.h5", 1)
    perm = np.random.default_rng(0).permutation(1797)[:1500]  # another order, a subset
    b = write_seeded(tmp_path / "b.h5", 2, rows=perm)
    return a, b, perm


def test_match_samples_by_index(pair):
    from nacscope.codes import CodeSet
    from nacscope.tui.compare import Comparison

    a, b, perm = pair
    cmp = Comparison([a, b])
    try:
        assert cmp.n == 1500
        with CodeSet(a) as ca, CodeSet(b) as cb:
            ia, ib = ca.sample_index, cb.sample_index
        for i in (0, 7, 1499):
            assert ia[cmp.rows[0][i]] == ib[cmp.rows[1][i]]
        assert sorted(ia[cmp.rows[0]]) == sorted(perm)
    finally:
        cmp.close()


def test_different_samples_refused(tmp_path):
    from nacscope.tui.compare import Comparison

    a = write_seeded(tmp_path / "a.h5", 1)
    c = write_seeded(tmp_path / "c.h5", 1, dataset="mnist")
    with pytest.raises(CodeSetError, match="other samples"):
        Comparison([a, c])
    d = write_seeded(tmp_path / "d.h5", 1, rows=np.arange(10))
    e = write_seeded(tmp_path / "e.h5", 1, rows=np.arange(10, 20))
    with pytest.raises(CodeSetError, match="share no sample"):
        Comparison([d, e])


def test_cli_refuses_different_samples(tmp_path):
    from typer.testing import CliRunner

    from nacscope.cli import app

    a = write_seeded(tmp_path / "a.h5", 1)
    c = write_seeded(tmp_path / "c.h5", 1, dataset="mnist")
    res = CliRunner().invoke(app, ["inspect", str(a), str(c), "--no-tui"])
    assert res.exit_code != 0
    assert "other samples" in res.output and "Traceback" not in res.output


def test_cli_no_tui_table(pair):
    from typer.testing import CliRunner

    from nacscope.analysis.collisions import collision_groups
    from nacscope.cli import app
    from nacscope.codes import CodeSet

    a, b, _ = pair
    res = CliRunner().invoke(app, ["inspect", str(a), str(b), "--no-tui"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    with CodeSet(a) as ca, CodeSet(b) as cb:
        da = len(np.unique(ca.bits("code"), axis=0))
        db = len(np.unique(cb.bits("code"), axis=0))
        groups = [collision_groups(c.packed("code")).n_groups for c in (ca, cb)]
    lines = {l.strip().split("  ")[0]: l.split() for l in res.output.splitlines() if l.strip()}
    line = lines["distinct patterns"]
    assert line[-3:] == [f"{da:,}", f"{db:,}", f"{db - da:+,}"]
    assert lines["collision groups"][-3:] == [f"{groups[0]:,}", f"{groups[1]:,}", f"{groups[1] - groups[0]:+,}"]
    assert "1,500 common samples" in res.output


def test_compare_screen_numbers(pair):
    from textual.widgets import DataTable

    from nacscope.analysis import analyze_codeset
    from nacscope.codes import CodeSet
    from nacscope.tui.compare import COMPARE_KEYS, Comparison
    from nacscope.tui.screens.compare import K_NEIGHBOURS, CompareApp, CompareScreen

    a, b, _ = pair
    cmp = Comparison([a, b])
    expected, bits, index = [], [], []
    for p in (a, b):
        with CodeSet(p) as cs:
            res = analyze_codeset(cs, ["code"])
            bits.append(cs.bits("code"))
            index.append(cs.sample_index)
        expected.append(res)
    app = CompareApp(cmp)

    async def run():
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_for(pilot, lambda: app.analysed)
                await pilot.pause()
                table = app.screen.query_one("#cmp-table", DataTable)
                shown = {table.get_row_at(r)[0]: table.get_row_at(r)[1:] for r in range(table.row_count)}
                from nacscope.analysis.labels import label

                for section, key in COMPARE_KEYS:
                    va, vb = (e[section]["code"][key] for e in expected)
                    cells = shown[label(key)]
                    if key == "distinct_patterns":  # an independent count as well
                        assert va == len(np.unique(bits[0], axis=0)) and vb == len(np.unique(bits[1], axis=0))
                    spec = ".4f" if key == "map" else ",.2f" if isinstance(va, float) else ","
                    assert list(cells) == [format(va, spec), format(vb, spec), format(vb - va, "+" + spec.lstrip(","))]
                assert isinstance(app.screen, CompareScreen)
                for step in range(2):  # sample 0, then the next one
                    i = app.screen.sample
                    for f in range(2):
                        t = app.screen.query_one(f"#cmp-nn-{f}", DataTable)
                        got = [(t.get_row_at(r)[0], t.get_row_at(r)[1]) for r in range(t.row_count)]
                        want = brute_neighbours(bits[f], int(cmp.rows[f][i]), K_NEIGHBOURS)
                        assert got == [(f"{int(index[f][j]):,}", str(d)) for j, d in want]
                    await pilot.press("n")
                    await pilot.pause()
                assert app.screen.sample == 2
        finally:
            cmp.close()

    asyncio.run(run())
