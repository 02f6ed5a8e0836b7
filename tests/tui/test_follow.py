"""Following a code set while ``dump`` writes it (SWMR), and opening bad files."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


from nacscope.codes import partial_path
from nacscope.tui.app import InspectApp
from nacscope.tui.session import Session
from tests.helpers import hang_guard
from tests.tui.test_app import SIZE, static_text, table_rows, wait_for

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tests.tui.conftest import digits_layers
    from nacscope.codes import CodeSetWriter, LayerSpec
    layers, y, thumbs = digits_layers()
    out, go = Path(sys.argv[1]), Path(sys.argv[2])
    specs = [LayerSpec(k, v.shape[1]) for k, v in layers.items()]
    w = CodeSetWriter(out, specs, label_kind="class", thumbnail_shape=(8, 8, 1))
    def part(a, b):
        w.append({{k: v[a:b] for k, v in layers.items()}}, labels=y[a:b], thumbnails=thumbs[a:b])
    part(0, 300)
    print("ready", flush=True)
    while not (go.with_suffix(".1")).exists(): time.sleep(0.02)
    part(300, 700)
    print("more", flush=True)
    while not (go.with_suffix(".2")).exists(): time.sleep(0.02)
    part(700, 1000)
    w.close()
    print("closed", flush=True)
    """
)


def _line(proc, timeout: float = 60.0) -> str:
    """The writer's next line, or a failure (never a hang) if it does not come."""
    import threading

    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)
    t.start()
    t.join(hang_guard(timeout))  # only turns a hang into a failure
    assert out, f"the writer said nothing for {hang_guard(timeout)} s (exit code {proc.poll()})"
    return out[0].strip()


@pytest.mark.slow
def test_follow_a_file_being_written(tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    out, go = tmp_path / "growing.h5", tmp_path / "go"
    proc = subprocess.Popen([sys.executable, "-c", WRITER.format(root=root), str(out), str(go)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert _line(proc) == "ready"
        assert partial_path(out).exists() and not out.exists()

        async def run():
            session = Session(out)  # the final name: the .partial file is opened in SWMR mode
            assert session.following and session.n == 300
            app = InspectApp(session, follow_interval_s=0.05)
            async with app.run_test(size=SIZE) as pilot:
                await wait_for(pilot, lambda: app.summary is not None)
                assert app.summary["n_samples"] == 300
                assert "being written: 300 rows" in static_text(app.screen.query_one("#ov-provenance"))
                go.with_suffix(".1").touch()
                await wait_for(pilot, lambda: app.rows == 700)
                assert session.following and session.labels.shape == (700,)
                await pilot.press("4")  # neighbours work on the rows so far
                scr = app.screen
                await wait_for(pilot, lambda: scr.result is not None)
                assert int(max(int(r[1]) for r in table_rows(scr.query_one("#nb-table")))) < 700
                go.with_suffix(".2").touch()
                await wait_for(pilot, lambda: not session.following)
                assert app.rows == 1000 and session.complete
                await wait_for(pilot, lambda: app.summary is not None and app.summary["n_samples"] == 1000)

        asyncio.run(run())
        assert proc.wait(timeout=hang_guard(60)) == 0
    finally:
        proc.kill()
