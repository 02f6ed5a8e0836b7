"""The TUI on real dumps: digits through a NAC-trained MLP and through the same MLP at random init.

``nacscope train`` (1 epoch) and ``nacscope dump`` build the files; the test then visits every screen and
checks the numbers against the analysis engine, and walks one input segment from the Regions screen.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import numpy as np
import pytest
from nacscope.analysis import analyze_codeset, collision_groups, neighbours
from nacscope.codes import CodeSet
from nacscope.tui.app import InspectApp
from nacscope.tui.screens import CollisionsScreen, NeighboursScreen, RegionsScreen
from nacscope.tui.screens.overview import fmt
from nacscope.tui.session import Session
from tests.helpers import invoke
from tests.tui.test_app import SIZE, table_rows, wait_for


@pytest.fixture(scope="module")
def dumps(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real")
    res = invoke("train", "--out", d / "run", "--dataset", "digits", "--arch", "mlp", "--bits", "16",
                 "--epochs", "1", "--batch-size", "256", "--no-baseline", "--quiet", "--threads", "1")
    assert res.exit_code == 0, res.output
    out = {"trained": d / "trained.h5", "random": d / "random.h5"}
    res = invoke("dump", d / "run" / "last.pt", "--dataset", "digits", "--split", "all", "-o", out["trained"])
    assert res.exit_code == 0, res.output
    res = invoke("dump", "--random-init", "--arch", "mlp", "--bits", "16", "--dataset", "digits",
                 "--split", "all", "-o", out["random"])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("which", ["trained", "random"])
def test_real_dump_every_screen(dumps, which, tmp_path):
    path = dumps[which]
    ref_copy = tmp_path / "ref.h5"
    shutil.copy(path, ref_copy)
    with CodeSet(ref_copy) as cs:
        ref = analyze_codeset(cs, use_cache=False)
        labels = cs.labels()
        rep = collision_groups(cs.packed("code"), labels)
        idx, dist = neighbours(cs, "code", 0, 20)

    async def run():
        app = InspectApp(Session(path))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None, timeout=60)
            assert app.layer == "code"
            rows = table_rows(app.screen.query_one("#ov-layers"))
            assert [r[0] for r in rows] == list(ref["layers"])
            for r in rows:
                assert r[3] == fmt(ref["layers"][r[0]]["distinct_patterns"])
                assert r[10] == f"{ref['retrieval'][r[0]]['map']:.4f}"
            await pilot.press("2")
            assert isinstance(app.screen, RegionsScreen)
            await pilot.press("3")
            scr = app.screen
            assert isinstance(scr, CollisionsScreen)
            await wait_for(pilot, lambda: scr.report is not None)
            assert scr.query_one("#col-groups").row_count == rep.n_groups
            if rep.n_groups:
                await pilot.pause()
                members = table_rows(scr.query_one("#col-members"))
                assert [int(m[0]) for m in members] == rep.groups[0].tolist()
            await pilot.press("4")
            nb = app.screen
            assert isinstance(nb, NeighboursScreen)
            await pilot.press("slash", "0", "enter")
            await wait_for(pilot, lambda: nb.query_row == 0 and nb.result is not None and nb._shown[1] == 0)
            await wait_for(pilot, lambda: nb.query_one("#nb-table").row_count == 20)
            got = table_rows(nb.query_one("#nb-table"))
            assert [int(r[1]) for r in got] == idx.tolist() and [int(r[2]) for r in got] == dist.tolist()
            await pilot.press("5", "1")

    asyncio.run(run())


def test_segment_walk_from_the_regions_screen(dumps, monkeypatch):
    from nacscope.analysis.segments import count_regions_exact
    from nacscope.codes.sources import load_inputs, load_network

    path = dumps["random"]

    async def run():
        app = InspectApp(Session(path))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None, timeout=60)
            await pilot.press("2", "slash", *"3 7", "enter")
            scr = app.screen
            await wait_for(pilot, lambda: scr.segment_result is not None, timeout=120)
            return scr.segment_result

    rows, result = asyncio.run(run())
    assert rows == [3, 7]
    with CodeSet(path) as cs:
        x, data = load_inputs(cs.attrs, cs.sample_index, [3, 7])
        # the code layer: every ReLU site, then the code's sign ("all" sites of this MLP)
        ref = count_regions_exact(load_network(cs.attrs, path, data), x[:1], x[1:2], layers=["all"])
    assert result["regions_exact"] == int(ref.regions[0])
    assert 1 <= result["regions_dense_1000"] <= result["regions_exact"]


@pytest.mark.slow  # the exact partition of a trained MLP's plane: ~1e5 faces, minutes on 2 cores
def test_plane_partition_from_the_regions_screen(dumps):
    from nacscope.analysis.partition import exact_plane_partition
    from nacscope.codes.sources import load_inputs, load_network
    from nacscope.tui.widgets import ImageView

    path = dumps["trained"]

    async def run():
        app = InspectApp(Session(path))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None, timeout=60)
            await pilot.press("2", "slash", *"3 7 11", "enter")
            scr = app.screen
            await wait_for(pilot, lambda: scr.plane_result is not None, timeout=600)  # exact: ~1e5 faces
            await pilot.pause()
            return scr.plane_result, scr.query_one("#rg-plane", ImageView).image, scr.plane_resolution()

    (rows, result), shown, side = asyncio.run(run())
    assert rows == [3, 7, 11]
    with CodeSet(path) as cs:
        x, data = load_inputs(cs.attrs, cs.sample_index, rows)
        ref = exact_plane_partition(load_network(cs.attrs, path, data), x, layers=["all"])
    assert result["regions"] == ref.n_faces and result["method"] == "exact"
    assert result["anchor_regions"] == ref.anchor_faces.tolist()
    # The picture: the reference's edges rasterised at the picture widget's size (dark), the anchors red.
    # At ~1e5 faces in a ~36 x 36 raster nearly every cell holds an edge, so only the frame is asserted dark.
    from nacscope.analysis.partition_plot import edge_raster

    img = result["image"]
    assert img.shape == (side, side, 3) and side > 16 and shown is not None  # sized to the picture widget
    assert (img[0, :, 1] == 40).all() and (img[-1, :, 1] == 40).all() and (img[:, 0, 1] == 40).all()
    red = (img == (255, 0, 0)).all(2)
    assert red.sum() == 3
    np.testing.assert_array_equal((img[..., 1] == 40)[~red], edge_raster(ref, side, side)[~red])


def test_cancelling_a_segment_walk_stops_it_part_way(dumps, monkeypatch):
    """The TUI's job progress reaches into the exact walk: raising from it (Esc) stops the walk there."""
    import nacscope.analysis.segments as seg
    from nacscope.tui.jobs import JobCancelled

    messages = []
    monkeypatch.setattr(seg, "count_regions_dense", lambda *a, **k: pytest.fail("dense sampling after a cancel"))

    def progress(done, total, message):
        messages.append(message)
        if message.startswith("exact walk"):
            raise JobCancelled()

    session = Session(dumps["random"])
    try:
        with pytest.raises(JobCancelled):
            session.segment("code", 3, 7, progress)
    finally:
        session.close()
    # the demo's MLP takes the chain walk (segments_chain); it stopped at its first report, before any layer
    walk = [m for m in messages if m.startswith("exact walk")]
    assert walk == [messages[-1]] and len(walk) == 1
