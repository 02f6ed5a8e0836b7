"""``nacscope regions`` without a terminal: plain progress lines, one per finished stage of each plane."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers import invoke




@pytest.mark.slow
def test_regions_prints_plain_progress_lines_per_finished_site(mlp_ckpt):
    """CliRunner is not a tty: each site of the exact partition ends with one '... faces done' line."""
    common = (mlp_ckpt, "--dataset", "digits", "--pairs", "0", "--margin", "0.1")
    r = invoke("regions", *common)
    assert r.exit_code == 0, r.output
    done = re.findall(r"exact plane: site (\d+)/(\d+) \(([^)]+)\): ([\d,]+)/([\d,]+) faces done in", r.output)
    assert done, r.output
    sites = [int(k) for k, *_ in done]
    assert sites == list(range(1, int(done[0][1]) + 1))  # every site once, in order
    # The faces a site has cut are the polygons the next site starts from (its progress total).
    plane = json.loads(invoke("regions", *common, "--json").output)["models"][0]["plane"]
    per_layer = list(plane["per_layer"].values())
    assert [int(t.replace(",", "")) for *_, t in done[1:]] == per_layer[:-1]
    # With --json the progress is off: nothing but the JSON document.
    assert "faces done" not in invoke("regions", *common, "--json").output
