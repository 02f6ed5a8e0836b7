"""What keeps ``nacscope inspect`` keys fast (see ``benchmarks/tui_open.py``), checked by behaviour.

* Screens are pre-mounted with their CSS current, so a first visit re-parses no stylesheet and the
  pre-mounted screens are styled exactly as a screen mounted on demand.
* The neighbours table is focused when mounted (a first-visit auto focus would redraw it twice).
* In a terminal session the GC is frozen once the screens exist, and unfrozen when the app ends.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from nacscope.tui.app import SCREENS_ORDER, InspectApp
from nacscope.tui.session import Session
from tests.tui.test_app import SIZE, wait_for


def _all_mounted(app: InspectApp) -> bool:
    return all(app._screen_stacks.get(m) for m in SCREENS_ORDER)


def test_premounted_screens_switch_without_css_reparse(digits_file):
    async def run() -> None:
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _all_mounted(app) and app.summary is not None)
            await pilot.pause()
            screens = {m: app._screen_stacks[m][0] for m in SCREENS_ORDER}
            assert all(s._css_update_count == app._css_update_count for s in screens.values())
            nb = screens["neighbours"]
            assert nb.focused is nb.query_one("#nb-table")  # focused before the first visit
            reparses = []
            parse = app.stylesheet.reparse
            app.stylesheet.reparse = lambda: (reparses.append(1), parse())[1]  # type: ignore[method-assign]
            for key, mode in (("2", "regions"), ("3", "collisions"), ("4", "neighbours"), ("5", "projection"),
                              ("1", "overview")):
                await pilot.press(key)
                await pilot.pause()
                assert app.current_mode == mode and app.screen is screens[mode]
            assert reparses == []
            # Styled from the app's CSS as any screen: nacscope.tcss sets #nb-table 3fr and #nb-side 2fr.
            await pilot.press("4")
            await pilot.pause()
            table, side = nb.query_one("#nb-table"), nb.query_one("#nb-side")
            assert str(table.styles.width) == "3fr" and str(side.styles.width) == "2fr"
            assert table.size.width > side.size.width > 0

    asyncio.run(run())


def test_screen_mounted_on_demand_matches_premounted(digits_file):
    """A key pressed before pre-mounting reaches a screen mounts it then and there, with the same result."""

    async def run() -> None:
        app = InspectApp(Session(digits_file))
        app._premount_next = lambda: None  # type: ignore[method-assign]  # no pre-mounting in this session
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.summary is not None)
            assert not app._screen_stacks.get("neighbours")
            await pilot.press("4")
            await wait_for(pilot, lambda: getattr(app.screen, "ap", None) is not None)
            nb = app.screen
            assert app.current_mode == "neighbours" and nb._css_update_count == app._css_update_count
            assert str(nb.query_one("#nb-table").styles.width) == "3fr"
            assert nb.focused is nb.query_one("#nb-table")

    asyncio.run(run())


@pytest.mark.parametrize("freeze", [True, None])
def test_gc_frozen_once_screens_exist_and_released_on_exit(digits_file, freeze):
    async def run() -> None:
        app = InspectApp(Session(digits_file), freeze_gc=freeze)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: _all_mounted(app))
            if freeze:
                await wait_for(pilot, lambda: gc.get_freeze_count() > 0)
                assert app._gc_frozen
            else:  # headless default: left alone (tests run many apps in one process)
                await pilot.pause(0.6)  # past the premount chain's last step
                assert gc.get_freeze_count() == 0 and not app._gc_frozen
        assert gc.get_freeze_count() == 0

    assert gc.get_freeze_count() == 0
    try:
        asyncio.run(run())
    finally:
        gc.unfreeze()
