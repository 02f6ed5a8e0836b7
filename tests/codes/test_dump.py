"""Streaming dumps: bits equal the signs of manual pre-activations, the authors' resnet50, SWMR, shards, aborts."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from torch import nn

from nacscope.codes import CodeSet, partial_path
from nacscope.codes.capture import capture_preactivations, list_sites, select_sites
from nacscope.codes.dump import DumpInput, dump_codes
from nacscope.codes.shards import merge_shards, shard_rows
from nacscope.data.protocols import queries_per_class
from nacscope.data import load_dataset
from nacscope.errors import CodeSetError, OptionError
from nacscope.nets import build_model
from tests.helpers import hang_guard

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits_data():
    return load_dataset("digits", "all")


def _input(d, n=None, is_query=None):
    n = n or len(d)
    return DumpInput(d.images[:n], d.normalize, d.labels[:n], d.indices[:n], d.class_names, is_query)


@pytest.mark.parametrize("batch_size", [1, 97, 4096])
def test_mlp_dump_equals_manual_forward(tmp_path, digits_data, batch_size):
    d = digits_data
    model = build_model("mlp", 12, in_channels=1, image_size=8, hidden=(40, 24)).eval()
    for m in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    n = 120 if batch_size == 1 else len(d)
    x = d.normalize(d.images[:n])
    sites = list_sites(model, x[:2])
    stats = dump_codes(model, _input(d, n), tmp_path / "c.h5", select_sites(sites, ["all"]), batch_size=batch_size)
    assert stats.n_samples == n
    # Manual forward: Linear -> BN(eval) -> ReLU, twice, then the head.
    enc = model.encoder
    with torch.no_grad():
        h, pre = x.flatten(1).double(), []
        for lin, bn in ((enc[1], enc[2]), (enc[4], enc[5])):
            z = h @ lin.weight.double().T + lin.bias.double()
            z = (z - bn.running_mean.double()) / torch.sqrt(bn.running_var.double() + bn.eps) * bn.weight.double() + bn.bias.double()
            pre.append(z)
            h = z.clamp(min=0)
        z = h @ model.head[0].weight.double().T + model.head[0].bias.double()
        pre.append(z)
        pre.append((z.clamp(min=0) @ model.head[2].weight.double().T + model.head[2].bias.double()) / math.sqrt(12))
    with CodeSet(tmp_path / "c.h5") as cs:
        assert cs.layer_names == ["encoder.3", "encoder.6", "head.1", "code"]
        assert [cs.layer(nm).units for nm in cs.layer_names] == [40, 24, 24, 12]
        for name, z in zip(cs.layer_names, pre):
            want = (z > 0).numpy()
            got = cs.bits(name).astype(bool)
            ok = z.abs().numpy() > 1e-5  # float32 vs float64 may differ only at ~0
            assert np.array_equal(got[ok], want[ok]), name
        assert np.array_equal(cs.labels(), d.labels[:n].numpy())
        assert np.array_equal(cs.sample_index, d.indices[:n].numpy())
        feats = cs.features("h").astype(np.float32)
        np.testing.assert_allclose(feats, model.features(x).detach().numpy(), rtol=1e-2, atol=1e-2)
        assert np.array_equal(cs.thumbnails()[..., 0], d.images[:n, 0].numpy())
        assert cs.attrs["precision"] == "fp32" and cs.complete


def test_resnet18_dump_every_site(tmp_path, digits_data):
    d = digits_data
    torch.manual_seed(1)
    model = build_model("resnet18", 8, in_channels=1, image_size=8).eval()
    n = 40
    sites = list_sites(model, d.normalize(d.images[:2]))
    dump_codes(model, _input(d, n), tmp_path / "r.h5", sites, batch_size=16, features=False)
    pre = capture_preactivations(model, d.normalize(d.images[:n]), sites)
    with CodeSet(tmp_path / "r.h5") as cs:
        assert len(cs.layer_names) == 1 + 16 + 2  # stem, 8 blocks x 2 calls, head, code
        for s in sites:
            assert np.array_equal(cs.bits(s.name), (pre[s.name] > 0).numpy().astype(np.uint8)), s.name
            assert cs.layer(s.name).shape == s.shape


class AuthorsNAC(nn.Module):
    """The authors' model layout: ``encoder`` (ResNet-50 children, CIFAR stem), ``head`` (Linear, ReLU),
    ``linear`` (the code layer), ``prediction`` (inference head). Code = sign of linear(head(encoder(x)))."""

    def __init__(self, bits: int = 16):
        super().__init__()
        import torchvision

        net = torchvision.models.resnet50(weights=None)
        net.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.encoder = nn.Sequential(*[m for k, m in net.named_children() if k not in ("fc", "maxpool")], nn.Flatten())
        self.head = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(inplace=True))
        self.linear = nn.Sequential(nn.Linear(2048, bits))
        self.prediction = nn.Sequential(nn.Linear(2048, 2048), nn.ReLU(inplace=True), nn.Linear(2048, bits))

    def forward(self, x):
        return self.linear(self.head(self.encoder(x))) / math.sqrt(self.linear[0].out_features)


def write_fake_cifar(root, n_train=4, n_test=6, seed=0):
    """A small CIFAR-10 directory in torchvision's python format (plain pickled dicts of arrays)."""
    import pickle

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else n_train
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)
    return root


@pytest.mark.filterwarnings("ignore:.*MD5.*")
def test_authors_resnet50_code_bits(tmp_path):
    """Their key layout, loaded by `nacscope dump` from a fabricated CIFAR-10 folder, normalised with their constants."""
    from typer.testing import CliRunner

    from nacscope.cli import app
    from nacscope.nets import AUTHORS_MEAN, AUTHORS_STD

    torch.manual_seed(0)
    ref = AuthorsNAC().eval()
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.uniform_(0.5, 1.5)
    torch.save(ref.state_dict(), tmp_path / "last.pt")
    write_fake_cifar(tmp_path / "data")
    out = tmp_path / "a.h5"
    r = CliRunner().invoke(app, ["dump", str(tmp_path / "last.pt"), "--arch", "resnet50", "--dataset", "cifar10",
                                 "--data-root", str(tmp_path / "data"), "--layers", "code", "--layers",
                                 "encoder.6.2.relu:3", "--batch-size", "4", "--device", "cpu", "-o", str(out)])
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    data = load_dataset("cifar10", "test", root=tmp_path / "data")
    mean = torch.tensor(AUTHORS_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(AUTHORS_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        a = ref((data.images.float() / 255 - mean) / std)  # (6, 16): their head output
    with CodeSet(out) as cs:
        assert cs.layer_names == ["encoder.6.2.relu:3", "code"]
        assert np.array_equal(cs.bits("code"), (a > 0).numpy().astype(np.uint8))
        assert cs.layer("encoder.6.2.relu:3").shape == (2048, 4, 4)
        assert np.array_equal(cs.sample_index, np.arange(50000, 50006))
        assert cs.attrs["config"]["source_format"] == "authors"
        # the code set keeps working after the dump: its network and inputs are rebuilt from the provenance
        # alone (the authors' file, their normalisation, the dataset under the recorded --data-root), and
        # re-capturing stored rows gives the file's bits
        from nacscope.codes.sources import load_inputs, load_network

        x, data = load_inputs(cs.attrs, cs.sample_index, [0, 3, 5])
        net = load_network(cs.attrs, out, data)
        stored = cs.bits("code")[[0, 3, 5]]
    with torch.no_grad():
        np.testing.assert_array_equal(net.codes(x).numpy().astype(np.uint8), stored)


def test_reader_sees_rows_while_dump_runs(tmp_path, digits_data):
    d = digits_data
    model = build_model("mlp", 8, in_channels=1, image_size=8, hidden=(16,)).eval()
    sites = list_sites(model, d.normalize(d.images[:2]))
    out = tmp_path / "live.h5"
    seen = {}
    reader = textwrap.dedent(f"""
        import sys, time
        from nacscope.codes import CodeSet
        cs = CodeSet({str(out)!r})
        assert cs.swmr and not cs.complete
        end = time.monotonic() + {hang_guard(60)!r}  # hang guard only: the rows are flushed already
        while (n := cs.refresh()) < 200 and time.monotonic() < end:
            time.sleep(0.05)
        print(n, cs.bits("code", slice(0, 200)).sum(), flush=True)
        sys.stdin.readline()  # still open (and locked) until the test has seen the dump finish
    """)

    def progress(done, total, message):
        if done == 300 and not seen:
            p = subprocess.Popen([sys.executable, "-c", reader], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True)
            seen["proc"] = p
            seen["rows"], seen["ones"] = (int(v) for v in p.stdout.readline().split())

    dump_codes(model, _input(d), out, sites, batch_size=100, progress=progress, write_block_rows=100)
    assert seen["proc"].poll() is None, "the reader should still hold the file when the dump completes"
    seen["proc"].communicate("done\n", timeout=hang_guard())
    assert seen["proc"].returncode == 0
    assert 200 <= seen["rows"] < len(d)
    with CodeSet(out) as cs:
        assert seen["ones"] == int(cs.bits("code", slice(0, 200)).sum())


def test_shards_merge_to_single_dump(tmp_path, digits_data):
    d = digits_data
    model = build_model("convnet", 8, in_channels=1, image_size=8, widths=(4, 8)).eval()
    sites = select_sites(list_sites(model, d.normalize(d.images[:2])), ["all"])
    n = 203
    q = queries_per_class(d.labels[:n].numpy(), 3, indices=d.indices[:n].numpy())
    data = _input(d, n, is_query=q)
    dump_codes(model, data, tmp_path / "one.h5", sites, batch_size=50)
    world = 3
    shards = []
    for r in range(world):
        shards.append(tmp_path / f"s{r}.h5")
        dump_codes(model, data, shards[-1], sites, batch_size=50, rows=shard_rows(n, r, world))
    merge_shards(shards, tmp_path / "merged.h5")
    with CodeSet(tmp_path / "one.h5") as a, CodeSet(tmp_path / "merged.h5") as b:
        assert a.n_samples == b.n_samples == n
        for name in a.layer_names:
            assert np.array_equal(a.packed(name), b.packed(name))
        for key in ("index", "labels", "is_query", "thumbnails"):
            assert np.array_equal(a.f["samples"][key][()], b.f["samples"][key][()]), key
        assert np.array_equal(a.features("h"), b.features("h"))


@pytest.mark.parametrize("n, world", [(10, 3), (2, 4), (60000, 8)])
def test_shard_rows_partition(n, world):
    blocks = [shard_rows(n, r, world) for r in range(world)]
    assert blocks[0][0] == 0 and blocks[-1][1] == n
    assert all(blocks[i][1] == blocks[i + 1][0] for i in range(world - 1))
    sizes = [b - a for a, b in blocks]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_failure_mid_dump_leaves_no_file(tmp_path, digits_data, monkeypatch, failure):
    from nacscope.codes import format as fmt

    d = digits_data
    model = build_model("mlp", 8, in_channels=1, image_size=8, hidden=(16,)).eval()
    sites = list_sites(model, d.normalize(d.images[:2]))
    real = fmt.CodeSetWriter.append
    calls = {"n": 0}

    def failing(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise failure
        return real(self, *a, **k)

    out = tmp_path / "x.h5"
    out_old = tmp_path / "old.h5"
    monkeypatch.setattr(fmt.CodeSetWriter, "append", failing)
    expected = CodeSetError if isinstance(failure, OSError) else KeyboardInterrupt
    with pytest.raises(expected):
        dump_codes(model, _input(d), out, sites, batch_size=100, write_block_rows=100)
    assert calls["n"] == 3 and not out.exists() and not partial_path(out).exists()
    # An existing output is not destroyed by a failing --force dump.
    out_old.write_bytes(b"keep me")
    calls["n"] = 0
    with pytest.raises(expected):
        dump_codes(model, _input(d), out_old, sites, batch_size=100, force=True, write_block_rows=100)
    assert out_old.read_bytes() == b"keep me" and not partial_path(out_old).exists()


def test_bf16_is_opt_in_and_recorded(tmp_path, digits_data):
    d = digits_data
    torch.manual_seed(0)
    model = build_model("mlp", 16, in_channels=1, image_size=8, hidden=(64,)).eval()
    sites = list_sites(model, d.normalize(d.images[:2]))
    dump_codes(model, _input(d), tmp_path / "f.h5", sites, batch_size=512)
    dump_codes(model, _input(d), tmp_path / "b.h5", sites, batch_size=512, precision="bf16")
    pre = capture_preactivations(model, d.normalize(d.images), sites)
    with CodeSet(tmp_path / "f.h5") as f, CodeSet(tmp_path / "b.h5") as b:
        assert f.attrs["precision"] == "fp32" and b.attrs["precision"] == "bf16"
        for s in sites:
            z = pre[s.name].numpy()
            diff = f.bits(s.name) != b.bits(s.name)
            # bf16 (8 mantissa bits) may flip only signs of pre-activations near zero.
            scale = np.abs(z).max()
            assert not diff[np.abs(z) > 0.05 * scale].any(), s.name
    with pytest.raises(OptionError, match="precision"):
        dump_codes(model, _input(d), tmp_path / "x.h5", sites, precision="fp16")


@pytest.mark.parametrize("k, seed", [(1, 0), (7, 3), (30, 2021)])
def test_queries_per_class(k, seed, digits_data):
    y = digits_data.labels.numpy()
    idx = digits_data.indices.numpy()
    q = queries_per_class(y, k, seed, idx)
    assert all((q & (y == c)).sum() == k for c in range(10))
    assert np.array_equal(q, queries_per_class(y, k, seed, idx))  # fixed by the seed
    # Independent of the order the samples come in: the same source indices are chosen.
    perm = np.random.default_rng(1).permutation(len(y))
    q2 = queries_per_class(y[perm], k, seed, idx[perm])
    assert set(idx[perm][q2]) == set(idx[q])
    if k < 30:
        assert not np.array_equal(q, queries_per_class(y, k, seed + 1, idx))


def test_paper_cifar10_split():
    from nacscope.data.protocols import PAPER_SEED, paper_cifar10, query_mask

    y = np.repeat(np.arange(10), 6000)[np.random.default_rng(0).permutation(60000)]
    idx = np.arange(60000)
    q = paper_cifar10(y, idx, "cifar10", "all")
    assert q.sum() == 10000 and all((q & (y == c)).sum() == 1000 for c in range(10))
    assert np.array_equal(q, queries_per_class(y, 1000, PAPER_SEED, idx))
    assert np.array_equal(q, query_mask("paper-cifar10", None, y, idx, "cifar10", "all"))
    for args in (("cifar10", "test"), ("cifar100", "all")):
        with pytest.raises(OptionError, match="needs --dataset cifar10 --split all"):
            paper_cifar10(y, idx, *args)
    with pytest.raises(OptionError, match="all 60000"):
        paper_cifar10(y[:100], idx[:100], "cifar10", "all")
    with pytest.raises(OptionError, match="not both"):
        query_mask("paper-cifar10", 5, y, idx, "cifar10", "all")
    assert query_mask(None, None, y, idx, "cifar10", "all") is None
