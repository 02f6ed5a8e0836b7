"""``x`` export from Collisions and Projection, and the Projection's colourings, against the engine and the file."""

from __future__ import annotations

import asyncio
import csv

import numpy as np
import pytest

from nacscope.analysis import collision_groups
from nacscope.codes import CodeSet, write_projection
from nacscope.tui.app import InspectApp
from nacscope.tui.screens import CollisionsScreen, ProjectionScreen
from nacscope.tui.screens.colouring import GREY, HIGHLIGHT, QUERY
from nacscope.tui.screens.dialogs import AskDialog
from nacscope.tui.session import Session
from nacscope.tui.widgets import Scatter, label_hex
from tests.tui.test_app import SIZE, static_text, wait_for


def source(path):
    """Everything the exports are compared with, read straight from the file."""
    with CodeSet(path) as cs:
        return {"index": cs.sample_index, "labels": cs.labels(), "mask": cs.query_mask,
                "bits": {l: cs.bits(l) for l in cs.layer_names}, "packed": cs.packed("code"),
                "thumbs": cs.thumbnails()}


async def export_via_dialog(pilot, app, path) -> str:
    """Press x, replace the suggested name by ``path``, Enter; the dialog's error line ('' when it closed)."""
    await pilot.press("x")
    await wait_for(pilot, lambda: isinstance(app.screen, AskDialog))
    await pilot.press("home", "ctrl+k", *str(path.relative_to(path.cwd()) if path.is_absolute() else path), "enter")
    await pilot.pause()
    return "" if not isinstance(app.screen, AskDialog) else static_text(app.screen.query_one("#ask-error")).strip()


def check_npz(path, rows, ref, layer="code"):
    with np.load(path) as z:
        assert np.array_equal(z["index"], ref["index"][rows])
        assert np.array_equal(z["labels"], ref["labels"][rows])
        assert np.array_equal(z["is_query"], ref["mask"][rows])
        assert np.array_equal(z["codes"], ref["bits"][layer][rows].astype(np.uint8))


def check_csv(path, rows, ref):
    with open(path) as fh:
        lines = [l for l in fh if not l.startswith("#")]
    got = list(csv.DictReader(lines))
    assert [int(r["index"]) for r in got] == ref["index"][rows].tolist()
    assert [int(r["label"]) for r in got] == ref["labels"][rows].tolist()
    assert [r["code"] for r in got] == [bytes(p).hex() for p in ref["packed"][rows]]


def check_codeset(path, rows, ref):
    with CodeSet(path) as cs:
        assert cs.complete and cs.n_samples == len(rows)
        for layer, bits in ref["bits"].items():
            assert np.array_equal(cs.bits(layer), bits[rows])
        assert np.array_equal(cs.sample_index, ref["index"][rows])
        assert np.array_equal(cs.labels(), ref["labels"][rows])
        assert np.array_equal(cs.query_mask, ref["mask"][rows])
        assert np.array_equal(cs.thumbnails(), ref["thumbs"][rows])
        assert cs.attrs["subset_rows"] == len(rows) and cs.attrs["dataset"] == "digits"


@pytest.mark.slow
def test_export_collision_group(digits_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short names to type
    ref = source(digits_file)
    rep = collision_groups(ref["packed"], ref["labels"])  # the engine's groups, largest first

    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            scr = app.screen
            assert isinstance(scr, CollisionsScreen)
            await wait_for(pilot, lambda: scr.report is not None)
            await pilot.press("down", "down")  # the third group in the table (sorted by size)
            await pilot.pause()
            gi = scr.group_index
            assert gi == 2
            rows = np.sort(np.asarray(rep.groups[gi]))
            assert len(rows) >= 2
            assert await export_via_dialog(pilot, app, tmp_path / "g.npz") == ""
            check_npz(tmp_path / "g.npz", rows, ref)
            assert await export_via_dialog(pilot, app, tmp_path / "g.csv") == ""
            check_csv(tmp_path / "g.csv", rows, ref)
            assert await export_via_dialog(pilot, app, tmp_path / "g.h5") == ""
            check_codeset(tmp_path / "g.h5", rows, ref)
            # A bad path: one line in the dialog, nothing written, the dialog stays for another try.
            err = await export_via_dialog(pilot, app, tmp_path / "missing" / "g.npz")
            assert "does not exist" in err and "\n" not in err
            assert not (tmp_path / "missing").exists()
            await pilot.press("home", "ctrl+k", *"g.txt", "enter")
            await pilot.pause()
            assert "cannot tell the format" in static_text(app.screen.query_one("#ask-error"))
            await pilot.press("escape")
            await pilot.pause()
            # An existing file: refused once, overwritten on a second Enter (here: another group).
            await pilot.press("up")
            await pilot.pause()
            rows = np.sort(np.asarray(rep.groups[scr.group_index]))
            err = await export_via_dialog(pilot, app, tmp_path / "g.npz")
            assert "press Enter again to overwrite" in err
            check_npz(tmp_path / "g.npz", np.sort(np.asarray(rep.groups[2])), ref)  # untouched
            await pilot.press("enter")
            await pilot.pause()
            assert not isinstance(app.screen, AskDialog)
            check_npz(tmp_path / "g.npz", rows, ref)
            assert not list(tmp_path.glob("*.partial"))

    asyncio.run(run())


def store_pca_projection(path) -> np.ndarray:
    """A stored projection of the code layer: two principal components of its bits, jittered."""
    from nacscope.analysis.projection import projection_name

    with CodeSet(path) as cs:
        bits = cs.bits("code").astype(np.float64)
        centred = bits - bits.mean(0)
        coords = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T  # (N, 2)
        coords += np.random.default_rng(0).normal(0, 0.05, coords.shape)
        assert write_projection(cs, projection_name("code"), coords, {"method": "pca-test"})
    return coords.astype(np.float32)


@pytest.mark.slow
def test_projection_colourings_and_export(digits_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short names to type
    ref = source(digits_file)
    coords = store_pca_projection(digits_file)
    rep = collision_groups(ref["packed"], ref["labels"])

    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("3")
            col = app.screen
            await wait_for(pilot, lambda: col.report is not None)
            await pilot.press("down")  # group 1 chosen on the Collisions screen
            await pilot.pause()
            await pilot.press("5")
            scr = app.screen
            assert isinstance(scr, ProjectionScreen)
            scatter = scr.query_one(Scatter)
            await wait_for(pilot, lambda: scatter.xy is not None)
            legend = lambda: static_text(scr.query_one("#pj-legend"))  # noqa: E731

            # label: each point in its class colour
            assert scr.colour_mode == "label" and "colour: label" in legend()
            assert scatter.point_colours() == [label_hex(int(y)) for y in ref["labels"]]
            # query / gallery: the points coloured "query" are exactly the file's query rows
            await pilot.press("c")
            colours = np.array(scatter.point_colours())
            assert "colour: query / gallery" in legend()
            assert np.array_equal(np.flatnonzero(colours == QUERY), np.flatnonzero(ref["mask"]))
            # collision group: the group selected on the Collisions screen, the others grey
            await pilot.press("c")
            colours = np.array(scatter.point_colours())
            assert "collision group 1 of code" in legend()
            assert np.array_equal(np.flatnonzero(colours == HIGHLIGHT), np.sort(rep.groups[1]))
            assert set(colours[colours != HIGHLIGHT]) == {GREY}
            # export the selection: the group's points in view (all, before zooming)
            assert await export_via_dialog(pilot, app, tmp_path / "sel.npz") == ""
            check_npz(tmp_path / "sel.npz", np.sort(rep.groups[1]), ref)
            # a chosen bit: on where the file's bit is 1
            await pilot.press("b")
            await wait_for(pilot, lambda: isinstance(app.screen, AskDialog))
            await pilot.press("home", "ctrl+k", "9", "9", "enter")
            await pilot.pause()
            assert "from 0 to 9" in static_text(app.screen.query_one("#ask-error"))
            await pilot.press("backspace", "backspace", "3", "enter")
            await pilot.pause()
            colours = np.array(scatter.point_colours())
            assert "bit 3 of code" in legend()
            assert np.array_equal(colours == HIGHLIGHT, ref["bits"]["code"][:, 3].astype(bool))
            # zoomed in with a point selected: the points in view with the selected point's bit value
            await pilot.press("plus", "plus", "enter")
            await pilot.pause()
            sel = scatter.selected
            (x0, x1, y0, y1) = scatter.bounds
            inside = (coords[:, 0] >= x0) & (coords[:, 0] <= x1) & (coords[:, 1] >= y0) & (coords[:, 1] <= y1)
            bit = ref["bits"]["code"][:, 3]
            expect = np.flatnonzero(inside & (bit == bit[sel]))
            assert 0 < len(expect) < len(bit)
            assert await export_via_dialog(pilot, app, tmp_path / "sel.h5") == ""
            check_codeset(tmp_path / "sel.h5", expect, ref)
            # back to labels
            await pilot.press("c")
            assert scr.colour_mode == "label"

    asyncio.run(run())


@pytest.mark.slow
def test_umap_stages_on_the_job_line(digits_file):
    """u on a layer without a projection: the job line goes through UMAP's stages, in order, and shows
    the epochs of the optimisation; the stored projection is then drawn."""
    from nacscope.analysis.projection import STAGE_NEIGHBOURS, STAGE_OPTIMISE, STAGE_TRUST

    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=SIZE) as pilot:
            seen: list = []
            app.watch(app, "job", lambda state: seen.append((state.message, state.done, state.total))
                      if state.running and state.message else None, init=False)
            await pilot.press("5")
            scr = app.screen
            await wait_for(pilot, lambda: scr.loaded_layer is not None and not any(w.is_running for w in app.workers))
            assert scr.coords is None
            await pilot.press("u")
            await wait_for(pilot, lambda: scr.coords is not None and not app.job_running, timeout=600)
            stages = [m for i, (m, _, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != m]
            assert stages == [STAGE_NEIGHBOURS, STAGE_OPTIMISE, STAGE_TRUST]
            epochs = [(d, t) for m, d, t in seen if m == STAGE_OPTIMISE]
            assert epochs[-1][0] == epochs[-1][1] == 500 and len({t for _, t in epochs}) == 1  # umap's 500 epochs (N <= 10,000)
            assert [d for d, _ in epochs] == sorted(d for d, _ in epochs)
            assert "done in" in app.job.last

    asyncio.run(run())
