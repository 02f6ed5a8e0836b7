"""The Regions screen's exact plane: one progress line per plane, Esc cancels it and the screen stays usable,
the picture is rasterised at the picture widget's size, and snapshots at 80x24 and 120x40."""

from __future__ import annotations

import re

import asyncio
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Static

from nacscope.codes import CodeSet
from nacscope.tui.app import InspectApp
from nacscope.tui.jobs import JobState
from nacscope.tui.screens import RegionsScreen
from nacscope.tui.session import Session
from nacscope.tui.widgets import ImageView
from tests.helpers import invoke
from tests.tui.test_app import wait_for


def tiny_dump(out: Path) -> Path:
    """Digits test split through a seeded random-init 64-8-8-8 MLP: a plane of a few hundred faces."""
    from nacscope.codes.job import DumpRequest, run_dump

    run_dump(DumpRequest(dataset="digits", out=out, random_init=True, arch="mlp", bits=8, hidden=(8, 8)),
             lambda rank: nullcontext(None))
    return out


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("planes")
    big = d / "big.h5"  # the default random-init MLP (256-256): its plane takes minutes, time to cancel it
    res = invoke("dump", "--random-init", "--arch", "mlp", "--bits", "16", "--dataset", "digits", "--split", "test",
                 "-o", big)
    assert res.exit_code == 0, res.output
    return {"tiny": tiny_dump(d / "tiny.h5"), "big": big}


async def _open_plane(pilot, rows: str) -> RegionsScreen:
    app = pilot.app
    await wait_for(pilot, lambda: app.summary is not None, timeout=60)
    await pilot.press("2", "slash", *rows, "enter")
    return app.screen


def _result_text(scr) -> str:
    return str(scr.query_one("#rg-result", Static).render())


@pytest.mark.slow
def test_escape_cancels_a_running_plane_and_the_screen_stays_usable(dumps):
    async def run():
        app = InspectApp(Session(dumps["big"]))
        async with app.run_test(size=(120, 40)) as pilot:
            scr = await _open_plane(pilot, "3 7 11")
            assert isinstance(scr, RegionsScreen)
            # the partition has started cutting: its one line shows the site and the polygons done
            await wait_for(pilot, lambda: scr.plane_line is not None and "site" in scr.plane_line[1], timeout=60)
            line = [ln for ln in _result_text(scr).splitlines() if "plane through" in ln]
            assert len(line) == 1 and "Esc cancels" in line[0] and re.search(r"site \d+/4 ", line[0])  # 3 ReLUs + code
            await pilot.press("escape")  # leaves the rows box
            assert app.job_running
            await pilot.press("escape")  # cancels the job
            await wait_for(pilot, lambda: not app.job_running, timeout=60)
            await wait_for(pilot, lambda: scr.plane_running is None, timeout=10)
            assert scr.plane_result is None
            assert scr.plane_line == ([3, 7, 11], "cancelled")
            assert [ln for ln in _result_text(scr).splitlines() if "plane" in ln] == ["plane through [3, 7, 11]: cancelled"]
            # still usable: a segment walk runs to the end
            scr.query_one("#rg-rows").value = "3 7"
            await pilot.press("s")
            await wait_for(pilot, lambda: scr.segment_result is not None, timeout=120)
            rows, result = scr.segment_result
            assert rows == [3, 7] and result["regions_exact"] >= result["regions_dense_1000"] >= 1
            assert "segment 3 \u2192 7" in _result_text(scr) and "cancelled" in _result_text(scr)

    asyncio.run(run())


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_plane_picture_is_sized_to_its_widget(dumps, size):
    from nacscope.analysis.partition import exact_plane_partition
    from nacscope.codes.sources import load_inputs, load_network

    path = dumps["tiny"]

    async def run():
        app = InspectApp(Session(path))
        async with app.run_test(size=size) as pilot:
            scr = await _open_plane(pilot, "3 7 11")
            await wait_for(pilot, lambda: scr.plane_result is not None, timeout=120)
            await pilot.pause()
            view = scr.query_one("#rg-plane", ImageView)
            return scr.plane_result[1], view.size.width, view.size.height, scr.plane_line, _result_text(scr)

    result, cols, rows, line, text = asyncio.run(run())
    side = result["image"].shape[0]
    assert result["image"].shape == (side, side, 3)
    assert side == max(8, min(cols, 2 * (rows - 1)))  # one half-block pixel per cell half, caption line apart
    assert side <= cols and side <= 2 * (rows - 1)
    assert line is None and "plane through [3, 7, 11]" in text and f"regions {result['regions']:,}" in text
    with CodeSet(path) as cs:
        x, data = load_inputs(cs.attrs, cs.sample_index, [3, 7, 11])
        ref = exact_plane_partition(load_network(cs.attrs, path, data), x, layers=["all"])  # the code layer: every site
    assert result["regions"] == ref.n_faces and ref.n_faces > 20
    assert result["vertices"] - result["edges"] + result["regions"] == 1
    assert ((result["image"] == (255, 0, 0)).all(2)).sum() == 3  # the anchors


@pytest.fixture
def snap_tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny_dump(tmp_path / "tiny.h5")
    return "tiny.h5"


@pytest.mark.slow
@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_snapshot_regions_with_a_plane(snap_tiny, snap_compare, size):
    async def run_before(pilot):
        app = pilot.app
        scr = await _open_plane(pilot, "3 7 11")
        await wait_for(pilot, lambda: scr.plane_result is not None and not app.job_running
                       and not any(w.is_running for w in app.workers), timeout=120)
        await pilot.press("escape")  # out of the rows box: no cursor blinking in the snapshot
        app.job = JobState()  # the job line otherwise shows how long the plane took
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(InspectApp(Session(snap_tiny)), terminal_size=size, run_before=run_before)


def test_tiny_dump_is_deterministic(tmp_path):
    """The snapshots rely on the seeded dump: two dumps give the same codes."""
    a, b = tiny_dump(tmp_path / "a.h5"), tiny_dump(tmp_path / "b.h5")
    with CodeSet(a) as ca, CodeSet(b) as cb:
        assert np.array_equal(ca.bits("code"), cb.bits("code"))
