"""Words on screen: metric labels from one table, help in the user's words, distinct palette entries."""

from __future__ import annotations

import asyncio

from nacscope.analysis.labels import LABELS, label, short_label
from nacscope.tui.app import InspectApp
from nacscope.tui.screens import HelpScreen
from nacscope.tui.session import Session
from tests.tui.test_app import static_text, wait_for


def test_labels_name_every_key_and_parameterised_ones():
    assert short_label("map") == "mAP" and label("map") != "map"
    assert short_label("map_at_100") == "mAP@100" and "100" in label("precision_at_100")
    assert "radius 2" in label("precision_radius_2")
    assert label("some_new_key") == "some new key"  # words, never the raw key with underscores
    for key in ("mean_relevant", "knn_k", "tie_aware_map"):
        assert "_" not in label(key) and label(key) != key.replace("_", " "), key
    assert all(len(v.short) <= 14 for v in LABELS.values())


def test_overview_and_help_speak_the_users_words(digits_file):
    async def run():
        app = InspectApp(Session(digits_file))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.summary is not None and not app.job_running)
            await pilot.pause()
            detail = static_text(app.screen.query_one("#ov-retrieval-detail"))
            for raw in ("tie aware map", "knn k", "mean relevant", "\nmap "):
                assert raw not in detail, detail
            r = app.summary["retrieval"]["code"]
            assert f"{label('mean_relevant')}" in detail and f"{r['mean_relevant']:.1f}" in detail
            assert f"{label('map')}" in detail and f"{r['map']:.4f}" in detail
            await pilot.press("2", "question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            text = "".join(static_text(w) for w in app.screen.query("Static"))
            assert "RegionsScreen" not in text and "slash" not in text and "question_mark" not in text
            assert "On the Regions screen" in text and "/ " in text, text
            await pilot.press("escape", "5")
            await wait_for(pilot, lambda: app.current_mode == "projection")
            names = [c.title for c in app.get_system_commands(app.screen)]
            assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
            assert {"Pan left", "Pan right", "Pan up", "Pan down"} <= set(names)

    asyncio.run(run())
