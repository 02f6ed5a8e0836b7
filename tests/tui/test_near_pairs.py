"""Near-collision pairs on the Collisions screen, against a brute-force pairwise reference."""

from __future__ import annotations

import asyncio
from itertools import combinations

import numpy as np
import pytest

from nacscope.tui.app import InspectApp
from nacscope.tui.session import Session
from tests.tui.test_app import table_rows, wait_for


def brute_pairs(bits: np.ndarray, radius: int) -> list[tuple[int, int, int]]:
    """Every pair i < j at Hamming distance <= radius, by a plain loop; sorted by (distance, i, j)."""
    out = []
    for i, j in combinations(range(len(bits)), 2):
        d = int(np.count_nonzero(bits[i] != bits[j]))
        if d <= radius:
            out.append((d, i, j))
    return [(i, j, d) for d, i, j in sorted(out)]


def test_library_pairs_match_brute_force():
    from nacscope.analysis.collisions import near_collision_pairs, near_collisions
    from nacscope.codes.format import pack_bits

    bits = np.random.default_rng(1).random((150, 9)) < 0.5  # (N, 9): many close pairs
    packed = pack_bits(bits)
    for r in (0, 1, 3):
        got = [tuple(p) for p in near_collision_pairs(packed, r, block=64).tolist()]
        assert got == brute_pairs(bits, r)
        assert len(got) == near_collisions(packed, r)["pairs"]


@pytest.mark.slow
def test_near_pairs_screen(digits_file):
    from nacscope.codes import CodeSet
    from nacscope.tui.screens.near_pairs import PAGE, NearPairsScreen

    with CodeSet(digits_file) as cs:
        bits = cs.bits("code")[:400]  # the reference on a prefix: O(N^2) Python loop
        labels = cs.labels()

    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.press("3")
            await pilot.pause()
            await pilot.press("P")
            await wait_for(pilot, lambda: isinstance(app.screen, NearPairsScreen) and app.screen.pairs is not None)
            scr = app.screen
            for r in (1, 2, 1):
                if scr.radius != r:
                    await pilot.press("plus" if r > scr.radius else "minus")
                    await wait_for(pilot, lambda: scr.pairs is not None and scr.radius == r)
                await pilot.pause()
                shown = table_rows(scr.query_one("#near-table"))
                assert len(shown) == min(PAGE, len(scr.pairs))
                # every listed pair: the right distance, sorted by distance, labels as stored
                dists = [int(row[2]) for row in shown]
                assert dists == sorted(dists) and max(dists) <= r
                for i, j, d, li, lj in shown[:50]:
                    i, j = int(i), int(j)
                    assert i < j and int(d) == int(np.count_nonzero(cs_bits(digits_file, i) != cs_bits(digits_file, j)))
                    assert li == f"digit{labels[i]}" and lj == f"digit{labels[j]}"
                # the whole list restricted to the prefix equals the brute-force pairs of the prefix
                prefix = [tuple(p) for p in scr.pairs.tolist() if p[1] < 400]
                assert prefix == brute_pairs(bits, r)
            await pilot.press("right")
            await pilot.pause()
            second = table_rows(scr.query_one("#near-table"))
            assert [int(x[0]) for x in second] == scr.pairs[PAGE : 2 * PAGE, 0].tolist()
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, NearPairsScreen)

    asyncio.run(run())


def cs_bits(path, row: int) -> np.ndarray:
    from nacscope.codes import CodeSet

    with CodeSet(path) as cs:
        return cs.bits("code", slice(row, row + 1))[0]
