"""Code sets and their cache sidecars are readable by HDF5 1.10, as docs/format.md promises.

Reads real files with the ``h5dump`` of the machine's HDF5 tools (Debian's ``hdf5-tools`` is 1.10.8;
``.ci/run`` installs it when apt can), so the check is the old library itself, not our reading of it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from contextlib import nullcontext

import numpy as np
import pytest

from nacscope.codes import CodeSet
from nacscope.codes.job import DumpRequest, run_dump
from tests.helpers import hang_guard, invoke

H5DUMP = shutil.which("h5dump")
pytestmark = pytest.mark.skipif(H5DUMP is None, reason="h5dump (hdf5-tools) is not installed")


def _h5dump(*args) -> str:
    out = subprocess.run([H5DUMP, *map(str, args)], capture_output=True, text=True, timeout=hang_guard(60))
    assert out.returncode == 0, out.stderr
    return out.stdout


def _version() -> tuple[int, int]:
    m = re.search(r"Version (\d+)\.(\d+)", subprocess.run([H5DUMP, "--version"], capture_output=True, text=True).stdout)
    return int(m.group(1)), int(m.group(2))


def test_a_dump_and_its_cache_read_with_the_machines_h5dump(tmp_path):
    path = tmp_path / "r.h5"
    run_dump(DumpRequest("digits", path, split="all", protocol="held-out", random_init=True, arch="mlp", bits=8,
                         hidden=(8, 8)),
             lambda rank: nullcontext(None))
    assert invoke("analyze", path, "--json").exit_code == 0  # writes the sidecar cache
    with CodeSet(path) as cs:
        is_query, n, packed = cs.query_mask, cs.n_samples, cs.packed("code", slice(0, 3))
    print("h5dump", _version())
    # the bool query mask and the completion flag, the two members HDF5 2.0's defaults made unreadable
    text = _h5dump("-d", "/samples/is_query", "-y", "-w", "0", path)
    values = [v == "TRUE" for v in re.findall(r"\b(TRUE|FALSE)\b", text.split("DATA {", 1)[1])]  # an HDF5 enum
    assert values == is_query.tolist()
    assert re.search(r'ATTRIBUTE "complete".*?\(0\): TRUE', _h5dump("-a", "/complete", path), re.S)
    # a bit matrix: the first three rows' bytes
    text = _h5dump("-d", "/layers/code/bits", "-s", "0,0", "-c", f"3,{packed.shape[1]}", "-y", "-w", "0", path)
    got = [int(v) for v in re.findall(r"\d+", text.split("DATA {", 1)[1].split("}", 1)[0])]
    assert got == packed.reshape(-1).tolist() and len(got) == 3 * packed.shape[1] and n == 1797
    # the whole sidecar opens (every group and attribute), and so does the whole code set
    _h5dump("-H", f"{path}.cache")
    _h5dump("-H", path)
    assert np.asarray(is_query).dtype == bool
