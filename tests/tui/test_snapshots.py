"""Snapshot tests of the main screens (SVG screenshots under ``__snapshots__``; textual pinned in the
``test`` extra). Update after a deliberate change with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the new SVGs before committing them."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.tui.app import InspectApp
from nacscope.tui.jobs import JobState
from nacscope.tui.session import Session
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


async def settle(pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.summary is not None and not app.job_running)
    await pilot.pause(0.3)
    scr = app.screen
    await wait_for(pilot, lambda: getattr(scr, "report", 1) is not None and getattr(scr, "ap", 1) is not None
                   and getattr(scr, "coords", 1) is not None)
    app.job = JobState(last="ready")  # the job line otherwise shows how long the analysis took
    await pilot.pause(0.8)  # images that met a busy file retry after 0.5 s


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_overview(snap_file, snap_compare, size):
    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", [(120, 40)])
def test_regions(snap_file, snap_compare, size):
    assert snap_compare(make_app(snap_file), press=["2"], terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", [(120, 40)])
def test_collisions_group_selected(snap_file, snap_compare, size):
    async def run_before(pilot):
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("down", "down")
        await pilot.pause(0.3)

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
def test_neighbours(snap_file, snap_compare, size):
    async def run_before(pilot):
        await pilot.press("4")
        await settle(pilot)

    assert snap_compare(make_app(snap_file), terminal_size=size, run_before=run_before)


def test_projection_point_selected(snap_file, snap_compare):
    async def run_before(pilot):
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("plus", "enter")
        await pilot.pause(0.5)

    assert snap_compare(make_app(snap_file), terminal_size=(120, 40), run_before=run_before)
