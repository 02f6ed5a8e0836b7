"""`nacscope demo`: runs end to end (short training), its table equals the files' contents, re-runs reuse.

The numbers are checked against independent references: distinct codes counted with Python tuples,
the random-init code bits against a plain forward pass of the same seeded model, the query split
against the documented digits test split (every 5th sample).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from nacscope.codes import CodeSet
from tests.helpers import invoke

ARGS = ["--epochs", "1", "--no-simclr", "--segment-pairs", "3", "--no-tui"]



@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    r = invoke("demo", "--out", out, *ARGS)
    assert r.exit_code == 0, r.output
    return out, r.output


@pytest.mark.slow
def test_demo_prints_table_and_paths(demo_dir):
    out, text = demo_dir
    flat = " ".join(text.split())
    for fragment in ("NAC vs random init", "mAP", "k-NN accuracy", "distinct codes", "probe", "written:",
                     str(out / "nac.h5"), str(out / "random.h5"), str(out / "comparison.png")):
        assert fragment in flat, fragment
    for name in ("nac.h5", "random.h5", "comparison.md", "comparison.json", "comparison.png", "nac-run/last.pt"):
        assert (out / name).is_file(), name
    assert not list(out.rglob("*.partial"))


@pytest.mark.slow
def test_demo_numbers_match_files(demo_dir):
    out, _ = demo_dir
    saved = json.loads((out / "comparison.json").read_text())
    rows = {r["metric"].split(" (")[0]: r for r in saved["rows"]}
    for name in ("nac", "random"):
        with CodeSet(out / f"{name}.h5") as cs:
            bits = cs.bits("code")
            distinct = len(set(map(tuple, bits.tolist())))
            assert rows["distinct codes"][name] == distinct
            counts: dict = {}
            for t in map(tuple, bits.tolist()):
                counts[t] = counts.get(t, 0) + 1
            assert rows["samples sharing their code with another sample"][name] == sum(c for c in counts.values() if c > 1)
            # Queries are the held-out digits (every 5th), the gallery the training digits.
            np.testing.assert_array_equal(cs.query_mask, cs.sample_index % 5 == 0)
            assert cs.n_samples == 1797
        for key in ("mAP", "k-NN accuracy", "probe: logistic regression on codes"):
            assert 0.0 < rows[key][name] <= 1.0
        seg = json.loads((out / f"{name}.segments.json").read_text())
        assert len(seg["counts"]) == 3 and all(c >= 1 for c in seg["counts"])
        assert math.isclose(rows["linear regions crossed along a segment between two test digits"][name],
                            float(np.mean(seg["counts"])))


@pytest.mark.slow
def test_random_init_bits_equal_plain_forward(demo_dir):
    """The random-init code set holds sign(code head) of the seeded model the demo describes."""
    from nacscope.data import load_dataset
    from nacscope.nets import random_init

    out, _ = demo_dir
    data = load_dataset("digits", "all")
    model = random_init("mlp", 32, 0, 1, 8, hidden=(256, 256))
    x = (data.images.float() / 255.0 - data.mean[0]) / data.std[0]  # (N, 1, 8, 8)
    with torch.no_grad():
        h = x.flatten(1)
        for layer in model.encoder:
            h = layer(h) if not isinstance(layer, torch.nn.Flatten) else h
        a = model.head(h) / math.sqrt(32)  # (N, 32)
    with CodeSet(out / "random.h5") as cs:
        np.testing.assert_array_equal(cs.bits("code").astype(bool), (a > 0).numpy())


@pytest.mark.slow
def test_demo_rerun_reuses(demo_dir):
    out, _ = demo_dir
    before = {p: p.stat().st_mtime_ns for p in (out / "nac.h5", out / "random.h5", out / "nac-run" / "last.pt")}
    r = invoke("demo", "--out", out, *ARGS)
    assert r.exit_code == 0, r.output
    assert "reused: nac checkpoint, nac code set, random code set" in " ".join(r.output.split())
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.slow
def test_demo_without_a_terminal_prints_one_line_per_step(demo_dir):
    """In a file or a pipe (CliRunner) there are no live bars: each step says what it did in one line."""
    import re

    _, text = demo_dir
    lines = text[: text.index("NAC vs random init on digits")].splitlines()
    assert all(line.strip() for line in lines), lines  # no blank line where a transient bar was
    at = {line.split("] ")[1].split(" (")[0]: i for i, line in enumerate(lines) if line.startswith("[")}
    for step, said in [("dumping NAC activation patterns", r"dumped 1,797 samples in \d+\.\d s"),
                       ("dumping random init activation patterns", r"dumped 1,797 samples in \d+\.\d s"),
                       ("analysing NAC", r"analysed NAC in \d+\.\d s"),
                       ("analysing random init", r"analysed random init in \d+\.\d s")]:
        assert re.fullmatch(r" {6}" + said, lines[at[step] + 1]), (step, lines)


@pytest.mark.slow
def test_demo_on_a_terminal_keeps_the_live_bars(demo_dir, monkeypatch):
    from nacscope.cli._common import err_console

    out, _ = demo_dir
    monkeypatch.setattr(err_console, "_force_terminal", True)
    r = invoke("demo", "--out", out, *ARGS)
    assert r.exit_code == 0, r.output
    assert "analysed NAC in" not in r.output and "[5/5] analysing random init" in r.output


@pytest.mark.slow
def test_demo_other_settings_refused(demo_dir):
    out, _ = demo_dir
    r = invoke("demo", "--out", out, "--epochs", "2", "--no-simclr", "--no-tui")
    assert r.exit_code == 2 and r.output.startswith("error:") and "--force" in r.output


@pytest.mark.slow
def test_demo_opens_tui_on_a_terminal(demo_dir, monkeypatch):
    import nacscope.cli.demo as cli_demo
    import nacscope.tui

    out, _ = demo_dir
    calls = []
    monkeypatch.setattr(cli_demo, "wants_tui", lambda tui: tui)
    monkeypatch.setattr(nacscope.tui, "run_inspect", lambda path, layer=None, **kw: calls.append((path, layer)))
    r = invoke("demo", "--out", out, "--epochs", "1", "--no-simclr", "--segment-pairs", "3")
    assert r.exit_code == 0, r.output
    assert calls == [(out / "nac.h5", "code")]


@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--bits", "0"], "--bits must be >= 1"),
])
def test_demo_bad_options(tmp_path, args, fragment):
    r = invoke("demo", "--out", tmp_path / "d", "--no-tui", *args)
    assert r.exit_code == 2 and fragment in r.output


def test_demo_out_is_a_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    r = invoke("demo", "--out", f, "--no-tui")
    assert r.exit_code == 2 and "not a folder" in r.output
