"""The key bar at 80x24 and 120x40: Help and Quit on every screen, the rest in priority order."""

from __future__ import annotations

import asyncio

import pytest

from nacscope.tui.app import SCREENS_ORDER, InspectApp
from nacscope.tui.session import Session
from nacscope.tui.widgets.keybar import KeyBar
from tests.tui.test_app import wait_for


def bar_line(app) -> tuple[str, int]:
    bar = app.screen.query_one(KeyBar)
    return bar.render().plain, bar.size.width


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_help_and_quit_on_every_screen(digits_file, size):
    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)  # the keys do not wait on results
        async with app.run_test(size=size) as pilot:
            for i, mode in enumerate(SCREENS_ORDER, 1):
                await pilot.press(str(i))
                await wait_for(pilot, lambda: app.current_mode == mode)
                await pilot.pause()
                line, width = bar_line(app)
                assert width == size[0]
                assert len(line) <= width, (mode, line)
                for label in ("? Help", "q Quit"):
                    assert label in line, (mode, size, line)
                # the screen's own first shown key comes before the app's screen switches when both fit
                own = [b for b in app.screen.BINDINGS if getattr(b, "show", False) and b.description]
                if own and size[0] >= 120:
                    assert own[0].description in line, (mode, line)
            await pilot.press("q")

    asyncio.run(run())


def test_bar_survives_a_resize_with_no_screen(digits_file):
    """A resize that reaches the bar while the app has no current screen draws nothing, raises nothing."""

    async def run():
        app = InspectApp(Session(digits_file), analyze_on_open=False)
        async with app.run_test(size=(80, 24)) as pilot:
            bar = app.screen.query_one(KeyBar)
            before = bar.render().plain
            stack = app._screen_stacks[app.current_mode]
            saved = list(stack)
            stack.clear()  # what the stack looks like while the app closes or swaps a mode
            try:
                bar.on_resize()
            finally:
                stack.extend(saved)
            assert bar.render().plain == before
            await pilot.pause()

    asyncio.run(run())
