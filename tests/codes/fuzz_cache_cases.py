"""Poisoned analysis caches for ``test_fuzz.py``: sidecars (``<file>.cache``) and legacy in-file entries.

Every case is "accept": a damaged cache is ignored (one warning line) and the results recomputed.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from tests.codes.fuzz_cases import N, SECRET, Case, _bytes, _edit, _flip, _secret_files, _stale_flags


def cache_cases() -> list[Case]:
    """Poisoned sidecars (``<file>.cache``) built by ``analyze``: each must be ignored and recomputed."""
    side = lambda p: p.with_name(p.name + ".cache")  # noqa: E731

    def edit_side(fn):
        def mutate(path: Path) -> None:
            with h5py.File(side(path), "r+", locking=False) as f:
                fn(f)
        return mutate

    def each_entry(fn):
        return edit_side(lambda f: [fn(f["analysis"][k]) for k in list(f["analysis"])])

    def drop_arrays(g):
        for k in list(g):
            del g[k]

    def replace_arrays(g, make):
        for k in list(g):
            a = g[k][()]
            del g[k]
            g.create_dataset(k, data=make(a))

    cases = [
        Case("cache.result-bad-json", "accept", each_entry(lambda g: g.attrs.__setitem__("result", "{not json"))),
        Case("cache.result-list", "accept", each_entry(lambda g: g.attrs.__setitem__("result", "[1, 2]"))),
        Case("cache.result-number", "accept", each_entry(lambda g: g.attrs.__setitem__("result", "3"))),
        Case("cache.result-empty-dict", "accept", each_entry(lambda g: g.attrs.__setitem__("result", "{}"))),
        Case("cache.result-missing", "accept", each_entry(lambda g: g.attrs.__delitem__("result"))),
        Case("cache.result-bytes", "accept", each_entry(lambda g: g.attrs.__setitem__("result", np.void(b"\xff\x00")))),
        Case("cache.arrays-missing", "accept", each_entry(drop_arrays)),
        Case("cache.arrays-scalar", "accept", each_entry(lambda g: replace_arrays(g, lambda a: 3))),
        Case("cache.arrays-truncated", "accept", each_entry(lambda g: replace_arrays(g, lambda a: a[:1]))),
        Case("cache.arrays-strings", "accept", each_entry(lambda g: replace_arrays(g, lambda a: np.array([b"x"] * max(1, a.size))))),
        Case("cache.arrays-extlink", "accept", lambda p: _cache_extlink(p)),
        Case("cache.n_samples-string", "accept", each_entry(lambda g: g.attrs.__setitem__("n_samples", "200"))),
        Case("cache.params-int", "accept", each_entry(lambda g: g.attrs.__setitem__("params", 5))),
        Case("cache.entry-dataset", "accept", edit_side(lambda f: [(f["analysis"].__delitem__(k),
                                                                    f["analysis"].create_dataset(k, data=[1]))
                                                                   for k in list(f["analysis"])])),
        Case("cache.analysis-dataset", "accept", edit_side(lambda f: (f.__delitem__("analysis"),
                                                                      f.create_dataset("analysis", data=[1])))),
        Case("cache.codeset-attr-array", "accept", edit_side(lambda f: f.attrs.__setitem__("codeset", np.arange(3)))),
        Case("cache.format-attr-array", "accept", edit_side(lambda f: f.attrs.__setitem__("format", np.arange(3)))),
        Case("cache.not-hdf5", "accept", lambda p: side(p).write_bytes(b"not a cache\n")),
        Case("cache.empty", "accept", lambda p: side(p).write_bytes(b"")),
        Case("cache.truncated", "accept", lambda p: side(p).write_bytes(side(p).read_bytes()[:2000])),
        Case("cache.directory", "accept", lambda p: (side(p).unlink(), side(p).mkdir())),
        Case("cache.symlink-secret", "accept", lambda p: (side(p).unlink(), (p.parent / "s.txt").write_bytes(SECRET),
                                                          side(p).symlink_to(p.parent / "s.txt"))),
        Case("cache.dangling-symlink", "accept", lambda p: (side(p).unlink(), side(p).symlink_to(p.parent / "nowhere"))),
        Case("cache.stale-write-flags", "accept", lambda p: _stale_flags(side(p))),
    ]
    for off in (0, 9, 11, 30, 47, 600, 1500, 3000, 5000, 9000):
        cases.append(Case(f"cache.flip-{off}", "accept", lambda p, off=off: _bytes(_flip(off))(side(p))))
    # Caches written inside the code set by older versions are read too: poison those.
    def legacy(result: str, arrays: bool):
        def fn(f: h5py.File) -> None:
            g = f.create_group("analysis/layer.pix")
            g.attrs["params"] = _layer_params("pix", 64)  # exactly what analyze asks for: the entry is used
            g.attrs["result"] = result
            g.attrs["n_samples"] = N
            if arrays:
                g.create_dataset("group_of", data=np.zeros(3))
        return fn
    cases += [Case(f"cache.legacy-{i}", "accept", _edit(legacy(r, a)))
              for i, (r, a) in enumerate([("{not json", False), ("[]", True), ("{}", False)])]
    return [Case(c.name, c.expect, c.mutate, with_cache=c.name.startswith("cache.") and "legacy" not in c.name)
            for c in cases]


def _layer_params(layer: str, units: int) -> str:
    from nacscope.analysis.cached import ALGORITHM_VERSION
    from nacscope.codes.cache import canonical_params

    return canonical_params({"v": ALGORITHM_VERSION, "what": "layer", "layer": layer, "units": units, "radii": [1, 2],
                             "nn_rows": N})


def _cache_extlink(path: Path) -> None:
    _, h5 = _secret_files(path.parent, (N,), "int64")
    with h5py.File(path.with_name(path.name + ".cache"), "r+", locking=False) as f:
        for k in list(f["analysis"]):
            g = f["analysis"][k]
            for a in list(g):
                del g[a]
                g[a] = h5py.ExternalLink(str(h5), "/data")
