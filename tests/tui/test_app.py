"""Headless tests of the inspect TUI: every screen by key presses; numbers equal the analysis engine's."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from nacscope.analysis import analyze_codeset, collision_groups, neighbours
from nacscope.analysis.engine import analyze_retrieval
from nacscope.codes import CodeSet, write_projection
from nacscope.tui.app import InspectApp
from nacscope.tui.screens import (
    CollisionsScreen,
    HelpScreen,
    LayerPicker,
    NeighboursScreen,
    OverviewScreen,
    ProjectionScreen,
    RegionsScreen,
)
from nacscope.tui.screens.overview import fmt
from nacscope.tui.session import Session
from nacscope.tui.widgets import ImageView, Scatter
from tests.helpers import hang_guard

SIZE = (120, 40)


async def wait_for(pilot, cond, timeout: float = 120.0) -> None:
    """Let the app run until ``cond()`` holds (workers finish in threads).

    ``timeout`` only turns a hang into a failure (scaled by ``tests.helpers.hang_guard``); never a speed test.
    """
    end = time.monotonic() + hang_guard(timeout)
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.05)


def reference(path: Path, tmp: Path) -> dict:
    """The engine's analysis of an untouched copy of the file (no cache read or written)."""
    copy = tmp / ("ref_" + path.name)
    shutil.copy(path, copy)
    with CodeSet(copy) as cs:
        return analyze_codeset(cs, use_cache=False)


def static_text(widget) -> str:
    """The plain text a Static shows (rich renderables rendered at 200 columns)."""
    from rich.console import Console

    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    content = widget.content
    console.print(content)
    return console.export_text()


def table_rows(table) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def test_every_screen_shows_the_engines_numbers(digits_file, tmp_path):
    ref = reference(digits_file, tmp_path)

    async def run():
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            await pilot.pause()
            assert isinstance(app.screen, OverviewScreen)
            assert app.layer == "code"  # the code layer is shown first
            # Overview: one row per layer with the engine's numbers.
            rows = table_rows(app.screen.query_one("#ov-layers"))
            assert [r[0] for r in rows] == ["fc1", "fc2", "code"]
            for r in rows:
                m, rt = ref["layers"][r[0]], ref["retrieval"][r[0]]
                assert r[3] == fmt(m["distinct_patterns"])
                assert r[4] == fmt(ref["cumulative"][r[0]]["distinct_patterns"])
                assert r[5].startswith(fmt(m["samples_in_collisions"]))
                assert r[6] == fmt(m["largest_group"])
                assert r[7] == fmt(m["dead_bits"]) and r[8] == fmt(m["stuck_bits"])
                assert r[10] == f"{rt['map']:.4f}"
            # Regions.
            await pilot.press("2")
            await wait_for(pilot, lambda: isinstance(app.screen, RegionsScreen))
            rg = table_rows(app.screen.query_one("#rg-table"))
            for r in rg:
                assert r[2] == fmt(ref["layers"][r[0]]["distinct_patterns"])
                assert r[3] == fmt(ref["layers"][r[0]]["regions_with_multiple_samples"])
                assert r[5] == fmt(ref["cumulative"][r[0]]["distinct_patterns"])
            bars = dict(app.screen.query_one("#rg-bar-layer").data)
            assert bars == {k: float(v["distinct_patterns"]) for k, v in ref["layers"].items()}
            # Collisions: the groups of the engine, largest first; select the second group.
            await pilot.press("3")
            await wait_for(pilot, lambda: isinstance(app.screen, CollisionsScreen) and app.screen.report is not None)
            await pilot.pause()
            with CodeSet(digits_file) as cs:
                rep = collision_groups(cs.packed("code"), cs.labels())
                thumbs = cs.thumbnails()
                labels = cs.labels()
            groups = app.screen.query_one("#col-groups")
            assert groups.row_count == rep.n_groups == ref["layers"]["code"]["collision_groups"]
            await pilot.press("down", "enter")
            await pilot.pause()
            assert app.screen.group_index == 1
            members = table_rows(app.screen.query_one("#col-members"))
            assert [int(m[0]) for m in members] == [int(r) for r in rep.groups[1]]
            assert [m[1] for m in members] == [f"digit{labels[int(r)]}" for r in rep.groups[1]]
            first = app.screen.query_one("#col-img-0", ImageView)
            assert np.array_equal(first.image, np.repeat(thumbs[rep.groups[1][0]], 3, axis=2))
            # Enter on a member opens its neighbours.
            member = int(rep.groups[1][2])
            await pilot.press("down", "down", "enter")
            await wait_for(pilot, lambda: isinstance(app.screen, NeighboursScreen))
            scr = app.screen
            await wait_for(pilot, lambda: scr.query_row == member and scr.result is not None and scr.ap is not None)
            with CodeSet(digits_file) as cs:
                idx, dist = neighbours(cs, "code", member, scr.k)
            nb = table_rows(scr.query_one("#nb-table"))
            assert [int(r[1]) for r in nb] == idx.tolist()
            assert [int(r[2]) for r in nb] == dist.tolist()
            assert [r[4] == "\u2713" for r in nb] == [labels[i] == labels[member] for i in idx]
            # Projection: with no stored projection it says so.
            await pilot.press("5")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectionScreen))
            await pilot.pause(0.2)
            assert app.screen.query_one(Scatter).xy is None
            # Help and the layer picker.
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await wait_for(pilot, lambda: isinstance(app.screen, ProjectionScreen))
            await pilot.press("L")
            await wait_for(pilot, lambda: isinstance(app.screen, LayerPicker))
            await pilot.press("home", "enter")
            await wait_for(pilot, lambda: app.layer == "fc1")

    asyncio.run(run())


def test_neighbours_ap_history_and_class_query(digits_file, tmp_path):
    with CodeSet(digits_file) as cs:
        labels, mask = cs.labels(), cs.query_mask

    async def run():
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            await pilot.press("right_square_bracket")  # code -> fc1 (wraps around)
            assert app.layer == "fc1"
            await pilot.press("4")
            scr = app.screen
            assert isinstance(scr, NeighboursScreen)
            await wait_for(pilot, lambda: scr.result is not None and scr.ap is not None)
            q0 = scr.query_row
            assert q0 == int(np.flatnonzero(mask)[0])
            # The query's AP equals the engine's per-query AP (cached arrays of analyze_retrieval).
            with CodeSet(digits_file) as cs:
                _, arrays = analyze_retrieval(cs, "fc1", use_cache=False)
            engine_ap = dict(zip(arrays["query_rows"].tolist(), arrays["ap"].tolist()))
            assert scr.ap["ap"] == pytest.approx(engine_ap[q0], abs=1e-12)
            tie = dict(zip(arrays["query_rows"].tolist(), arrays["tie_ap"].tolist()))
            assert scr.ap["tie_aware_ap"] == pytest.approx(tie[q0], abs=1e-12)
            # Jump to the third neighbour's own neighbours, then back.
            third = int(scr.result[0][2])
            await pilot.press("down", "down", "enter")
            await wait_for(pilot, lambda: scr.query_row == third and scr.result is not None and scr._shown[1] == third)
            await wait_for(pilot, lambda: scr.result is not None and int(scr.query_one("#nb-table").row_count) > 0)
            assert scr.history == [q0]
            await pilot.press("backspace")
            await wait_for(pilot, lambda: scr.query_row == q0)
            assert scr.history == []
            # Query by class: the first query sample of class 3.
            await pilot.press("slash")
            await pilot.press(*"class digit3", "enter")
            want = int(np.flatnonzero((labels == 3) & mask)[0])
            await wait_for(pilot, lambda: scr.query_row == want)
            # 'n' steps to the next sample of the same class.
            await pilot.press("n")
            await wait_for(pilot, lambda: scr.query_row == int(np.flatnonzero(labels == 3)[np.flatnonzero(labels == 3) > want][0]))

    asyncio.run(run())


def test_projection_scatter_select_and_open_neighbours(digits_file):
    from nacscope.analysis.projection import projection_name

    # A stored projection of the code layer: the first two principal components of its bits.
    with CodeSet(digits_file) as cs:
        bits = cs.bits("code").astype(np.float64)
        centred = bits - bits.mean(0)
        coords = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T  # (N, 2)
        coords += np.random.default_rng(0).normal(0, 0.05, coords.shape)  # spread identical codes
        assert write_projection(cs, projection_name("code"), coords, {"method": "pca-test"})

    async def run():
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            await pilot.press("5")
            scatter = app.screen.query_one(Scatter)
            await wait_for(pilot, lambda: scatter.xy is not None)
            assert np.allclose(scatter.xy, coords.astype(np.float32))
            await pilot.press("plus", "plus", "left", "up", "enter")
            await pilot.pause(0.2)
            d = (((scatter.xy - scatter.center) / scatter.span) ** 2).sum(axis=1)
            assert scatter.selected == int(np.argmin(d))
            sel = scatter.selected
            await pilot.press("n")
            await wait_for(pilot, lambda: isinstance(app.screen, NeighboursScreen) and app.screen.query_row == sel)

    asyncio.run(run())


def test_layer_switch_follows_on_every_screen(digits_file):
    async def run():
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            await pilot.press("3")
            scr = app.screen
            await wait_for(pilot, lambda: scr.report is not None)
            await pilot.press("left_square_bracket")  # code -> fc2
            assert app.layer == "fc2"
            await wait_for(pilot, lambda: scr.report is not None and scr.report_layer == "fc2")
            with CodeSet(digits_file) as cs:
                rep = collision_groups(cs.packed("fc2"), cs.labels())
            assert scr.report.n_groups == rep.n_groups
            assert scr.query_one("#col-groups").row_count == rep.n_groups
            await pilot.press("1")
            table = app.screen.query_one("#ov-layers")
            assert table.cursor_row == 1  # fc2 highlighted on the overview too

    asyncio.run(run())


def test_jobs_show_progress_and_cancel(digits_file):
    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=SIZE) as pilot:
            finished, reached = [], [0]
            app.JOB_LINE_CLEAR_S = 0.2  # the outcome line clears after this (6 s in use)

            def slow(progress):
                for i in range(1000):
                    progress(i, 1000, "step")
                    reached[0] = i
                    time.sleep(0.01)
                return "all done"

            assert app.start_job("slow job", slow, finished.append)
            await wait_for(pilot, lambda: app.job.total == 1000 and app.job.done > 0)
            assert not app.start_job("second", slow, finished.append)  # one job at a time
            await pilot.press("escape")
            await wait_for(pilot, lambda: not app.job_running)
            assert reached[0] < 999  # the job stopped at the next progress call, not at its end
            await wait_for(pilot, lambda: "cancelled" in app.job.last)
            assert finished == []
            await wait_for(pilot, lambda: app.job.last == app.idle_text() and not app.job.running)  # the line clears
            assert app.start_job("quick", lambda progress: 7, finished.append)
            await wait_for(pilot, lambda: "quick: done" in app.job.last)
            assert finished == [7]
            await wait_for(pilot, lambda: app.job.last == app.idle_text())

    asyncio.run(run())


def test_file_without_labels_or_split(tmp_path):
    from tests.tui.conftest import write_digits_codeset

    path = write_digits_codeset(tmp_path / "nolabels.h5", split=False, labels=False)

    async def run():
        app = InspectApp(Session(path))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            assert "no labels: retrieval skipped" in app.summary["notes"]
            rows = table_rows(app.screen.query_one("#ov-layers"))
            assert all(r[10] == "-" for r in rows)
            await pilot.press("4")
            scr = app.screen
            await wait_for(pilot, lambda: scr.result is not None)
            assert scr.ap is None
            assert all(r[4] == "-" for r in table_rows(scr.query_one("#nb-table")))
            await pilot.press("3")
            await wait_for(pilot, lambda: app.screen.report is not None)
            assert app.screen.report.purity is None

    asyncio.run(run())


def test_second_session_opens_from_the_cache(digits_file, monkeypatch):
    """The second session shows the first one's numbers without computing any (a cache hit, not a timing)."""

    async def run() -> dict:
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None and not app.job_running)
            return app.summary

    first = asyncio.run(run())
    with CodeSet(digits_file) as cs:
        from nacscope.codes import cached_keys

        assert {"layer.code", "retrieval.code", "cumulative"} <= set(cached_keys(cs))

    def recomputed(*a, **k):
        raise AssertionError("the second session recomputed an analysis")

    import nacscope.analysis.engine as engine

    monkeypatch.setattr(engine, "collision_groups", recomputed)
    monkeypatch.setattr(engine, "bit_health", recomputed)
    second = asyncio.run(run())
    assert second["layers"] == first["layers"] and second["retrieval"] == first["retrieval"]


def test_many_collision_groups_are_paged_and_sorted(tmp_path):
    """1,200 groups: the table shows 500 at a time and grows as the cursor moves down; sorting by
    purity lists the engine's purities in ascending order."""
    from nacscope.codes import CodeSetWriter, LayerSpec

    rng = np.random.default_rng(7)
    base = rng.integers(0, 2, size=(1200, 40), dtype=np.uint8)  # 1,200 distinct codes
    sizes = 2 + (np.arange(1200) % 3)  # groups of 2, 3 and 4
    bits = np.repeat(base, sizes, axis=0)  # (N, 40)
    labels = rng.integers(0, 3, len(bits))
    path = tmp_path / "groups.h5"
    with CodeSetWriter(path, [LayerSpec("code", 40, kind="code")], label_kind="class") as w:
        w.append({"code": bits}, labels=labels)
    rep = collision_groups(np.packbits(bits, axis=1), labels)
    assert rep.n_groups == 1200

    async def run():
        app = InspectApp(Session(path), analyze_on_open=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            scr = app.screen
            await wait_for(pilot, lambda: scr.report is not None)
            table = scr.query_one("#col-groups")
            assert table.row_count == 500
            assert [int(r[0]) for r in table_rows(table)] == list(range(500))  # the engine's order
            await pilot.press("ctrl+end")
            await wait_for(pilot, lambda: table.row_count == 1000)
            await pilot.press("ctrl+end")
            await wait_for(pilot, lambda: table.row_count == 1200)
            await pilot.press("o")  # sort by purity
            await pilot.pause()
            shown = [int(r[0]) for r in table_rows(table)]
            assert len(shown) == 500
            pur = rep.purity[shown]
            assert np.all(np.diff(pur) >= 0) and pur[0] == rep.purity.min()

    asyncio.run(run())
