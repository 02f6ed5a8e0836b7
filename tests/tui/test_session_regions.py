"""``Session.segment`` / ``Session.plane`` count the regions *up to* the layer asked for.

References: the same counts on the network cut by hand after that layer (a plain ``nn.Sequential`` of
the first modules), and the order that must hold (more sites never merge regions).
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch
from nacscope.analysis.partition import exact_plane_partition
from nacscope.analysis.segments import count_regions_exact
from nacscope.codes import CodeSet
from nacscope.codes.job import DumpRequest, run_dump
from nacscope.codes.sources import load_inputs, load_network
from nacscope.tui.session import Session

ROWS = [3, 7, 11]


@pytest.fixture(scope="module")
def random_dump(tmp_path_factory):
    path = tmp_path_factory.mktemp("session_regions") / "random.h5"
    run_dump(DumpRequest("digits", path, split="all", random_init=True, arch="mlp", bits=16, hidden=(64, 64)),
             lambda rank: nullcontext(None))
    with CodeSet(path) as cs:
        assert [lay.name for lay in cs.layers] == ["encoder.6", "head.1", "code"]
        x, data = load_inputs(cs.attrs, cs.sample_index, ROWS)
        net = load_network(cs.attrs, path, data).eval()
    return path, net, x


def test_segment_counts_regions_up_to_the_layer(random_dump):
    path, net, x = random_dump
    encoder_only = copy.deepcopy(net.encoder)  # Flatten, Linear, BN, ReLU, Linear, BN, ReLU: the cut at encoder.6
    by_hand = int(count_regions_exact(encoder_only, x[:1], x[1:2]).regions[0])
    session = Session(path)
    try:
        got = {layer: session.segment(layer, ROWS[0], ROWS[1]) for layer in ("encoder.6", "head.1", "code")}
    finally:
        session.close()
    assert got["encoder.6"]["regions_exact"] == by_hand and got["encoder.6"]["sites"] == 2
    assert got["head.1"]["sites"] == 3 and got["code"]["sites"] == 4
    counts = [got[k]["regions_exact"] for k in ("encoder.6", "head.1", "code")]
    assert counts == sorted(counts) and counts[0] < counts[-1]  # more sites cut the segment more
    for r in got.values():
        assert 1 <= r["regions_dense_1000"] <= r["regions_exact"]


def test_plane_counts_regions_up_to_the_layer(random_dump):
    path, net, x = random_dump
    first = torch.nn.Sequential(*list(net.encoder)[:4])  # the cut after the first ReLU (encoder.3)
    by_hand = exact_plane_partition(copy.deepcopy(net.encoder), x)
    session = Session(path)
    try:
        enc = session.plane("encoder.6", *ROWS)
        code = session.plane("code", *ROWS)
    finally:
        session.close()
    assert enc["regions"] == by_hand.n_faces and enc["anchor_regions"] == by_hand.anchor_faces.tolist()
    assert exact_plane_partition(first, x).n_faces <= enc["regions"] <= code["regions"]
    assert code["sites"] == 4 and enc["sites"] == 2


def test_an_unknown_layer_is_refused_in_one_line(random_dump):
    from nacscope.errors import OptionError

    session = Session(random_dump[0])
    try:
        with pytest.raises(OptionError, match="no site 'nope'"):
            session.segment("nope", 0, 1)
    finally:
        session.close()
