"""UMAP's stages reported as progress: umap-learn's epoch bar parsed, and ``nacscope report``'s plain lines."""

from __future__ import annotations

import re

import pytest

from nacscope.analysis.projection import STAGE_NEIGHBOURS, STAGE_OPTIMISE, STAGE_TRUST, _EpochSink
from tests.cli.test_analyze import write
from tests.helpers import invoke


def test_epoch_sink_turns_tqdm_output_into_stages():
    calls = []
    sink = _EpochSink(lambda d, t, m: calls.append((d, t, m)))
    # what tqdm writes with bar_format "{n}/{total};": a carriage return, then the bar, repeatedly
    for text in ("\r0/200;", "\r", "57/200;", "\r57/200;\r131/200;", "garbage", "\r200/200;"):
        sink.write(text)
    sink.finish()
    assert calls == [(1, 1, STAGE_NEIGHBOURS), (0, 200, STAGE_OPTIMISE), (57, 200, STAGE_OPTIMISE),
                     (131, 200, STAGE_OPTIMISE), (200, 200, STAGE_OPTIMISE)]


@pytest.mark.slow
def test_report_without_a_terminal_prints_one_line_per_umap_stage(tmp_path):
    """CliRunner is not a tty: each finished stage of the UMAP is one plain line on stderr, in order."""
    codes = write(tmp_path / "codes.h5")
    r = invoke("report", codes, "-o", tmp_path / "rep", "--no-plane")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "umap.png").exists()
    lines = r.output.splitlines()

    def line_of(stage: str) -> tuple[int, int, int]:
        hits = [(i, m) for i, l in enumerate(lines) if (m := re.fullmatch(rf"{re.escape(stage)}: ([\d,]+)/([\d,]+) done in [\d.]+ s", l))]
        assert len(hits) == 1, (stage, r.output)
        i, m = hits[0]
        return i, int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))

    nn, opt, tw = line_of(STAGE_NEIGHBOURS), line_of(STAGE_OPTIMISE), line_of(STAGE_TRUST)
    assert nn[0] < opt[0] < tw[0]
    assert nn[1:] == (1, 1) and tw[1:] == (1, 1)
    assert opt[1] == opt[2] == 500  # umap-learn's default: 500 epochs for data sets of at most 10,000 samples
