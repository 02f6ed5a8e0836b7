"""Snapshot tests of the main screens (SVG screenshots under ``__snapshots__``; textual pinned in the
``test`` extra). Update after a deliberate change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.tui.app import SCREENS_ORDER, InspectApp
from nacscope.tui.jobs import JobState
from nacscope.tui.screens import HelpScreen
from nacscope.tui.session import Session
from nacscope.tui.widgets import ImageView
from tests.tui.conftest import write_digits_codeset
from tests.tui.test_app import wait_for


@pytest.fixture
def snap_file(tmp_path, monkeypatch):
    """The digits code set under a fixed relative name, with a stored 2-D projection of ``code``."""
    from nacscope.analysis.projection import projection_name
    from nacscope.codes import CodeSet, write_projection

    monkeypatch.chdir(tmp_path)
    path = write_digits_codeset(tmp_path / "digits.h5")
    with CodeSet(path) as cs:
        bits = cs.bits("code").astype(np.float64)  # (N, 10)
        jitter = np.random.default_rng(0).uniform(-0.3, 0.3, (len(bits), 2))
        coords = np.stack([bits[:, :5].sum(1), bits[:, 5:].sum(1)], axis=1) + jitter  # a deterministic layout
        write_projection(cs, projection_name("code"), coords, {"method": "snapshot-test"})
    return "digits.h5"


def make_app(name: str) -> InspectApp:
    return InspectApp(Session(name))


def idle(app) -> bool:
    """The app has nothing left to do: analysis in, no worker running, every screen built, the current
    screen's results in and no thumbnail waiting for a busy file."""
    scr = app.screen
    return (app.summary is not None and not app.job_running
            and not any(w.is_running for w in app.workers)
            and all(app._screen_stacks.get(m) for m in SCREENS_ORDER)
            and all(getattr(scr, attr, 1) is not None for attr in ("report", "ap", "coords"))
            and not any("(file busy)" in v.caption for v in scr.query(ImageView)))


async def settle(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: idle(app))
    app.job = JobState()  # the job line otherwise shows how long the analysis took
    await pilot.wait_for_scheduled_animations()
    await wait_for(pilot, lambda: idle(app))


SIZES = [(120, 40), (80, 24)]


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_overview(snap_file, snap_compare, size):
    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=settle)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_regions(snap_file, snap_compare, size):
    assert snap_compare(make_app(snap_file), press=["2"], terminal_size=size, run_before=settle)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_collisions_group_selected(snap_file, snap_compare, size):
    async def run_before(pilot):
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down", "down")
        await settle(pilot)

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_near_pairs(snap_file, snap_compare, size):
    """P on Collisions: the near-collision pairs within radius 1, first page."""
    from nacscope.tui.screens.near_pairs import NearPairsScreen

    async def run_before(pilot):
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, NearPairsScreen) and pilot.app.screen.pairs is not None
                       and not any(w.is_running for w in pilot.app.screen.workers))
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_neighbours(snap_file, snap_compare, size):
    async def run_before(pilot):
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_projection_point_selected(snap_file, snap_compare, size):
    async def run_before(pilot):
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("plus", "enter")
        await settle(pilot)

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_help(snap_file, snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, HelpScreen))
        await pilot.wait_for_scheduled_animations()  # the help tables lay out over a few refreshes
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_compare(tmp_path, snap_compare, size):
    from nacscope.tui.compare import Comparison
    from nacscope.tui.screens.compare import CompareApp
    from tests.tui.test_compare import write_seeded

    a = write_seeded(tmp_path / "a.h5", 1)
    b = write_seeded(tmp_path / "b.h5", 2, rows=np.random.default_rng(0).permutation(1797)[:1500])
    cmp = Comparison([a, b])
    app = CompareApp(cmp)

    async def run_before(pilot):
        await wait_for(pilot, lambda: app.analysed and not any(w.is_running for w in app.workers))
        await pilot.press("n")
        await pilot.wait_for_scheduled_animations()
        await pilot.pause()

    try:
        assert snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        cmp.close()
