"""``nacscope.export.subset``: chosen rows of an open code set to npz/csv, or as a new code set."""

from __future__ import annotations

import numpy as np
import pytest

from nacscope.codes import CodeSet
from nacscope.errors import CodeSetError, OptionError
from nacscope.export.subset import export_selection, selection_rows
from tests.tui.conftest import write_digits_codeset


@pytest.fixture
def digits(tmp_path):
    return write_digits_codeset(tmp_path / "d.h5", rows=700)


def test_rows_sorted_unique_and_checked(digits):
    with CodeSet(digits) as cs:
        assert selection_rows(cs, [5, 3, 5, 0]).tolist() == [0, 3, 5]
        with pytest.raises(OptionError, match="no rows"):
            selection_rows(cs, [])
        with pytest.raises(OptionError, match="outside"):
            selection_rows(cs, [3, 700])
        with pytest.raises(OptionError, match="cannot tell the format"):
            export_selection(cs, digits.with_name("x.txt"), [1], layer="code")
        with pytest.raises(OptionError, match="is the input"):
            export_selection(cs, digits, [1], layer="code", force=True)


def test_npz_and_codeset_hold_exactly_the_rows(digits, tmp_path):
    rows = [650, 2, 17, 17, 399]
    want = np.array(sorted(set(rows)))
    with CodeSet(digits) as cs:
        bits = {l: cs.bits(l) for l in cs.layer_names}
        labels, index, mask, thumbs = cs.labels(), cs.sample_index, cs.query_mask, cs.thumbnails()
        (npz,) = export_selection(cs, tmp_path / "s.npz", rows, layer="fc1")
        (h5,) = export_selection(cs, tmp_path / "s.h5", rows, layer="code")
        with pytest.raises((OptionError, CodeSetError), match="exists"):
            export_selection(cs, tmp_path / "s.h5", rows, layer="code")
    with np.load(npz) as z:
        assert np.array_equal(z["codes"], bits["fc1"][want]) and np.array_equal(z["index"], index[want])
        assert np.array_equal(z["labels"], labels[want]) and np.array_equal(z["is_query"], mask[want])
    with CodeSet(h5) as sub:
        assert sub.complete and sub.n_samples == len(want) and sub.layer_names == list(bits)
        assert all(np.array_equal(sub.bits(l), b[want]) for l, b in bits.items())
        assert np.array_equal(sub.labels(), labels[want]) and np.array_equal(sub.query_mask, mask[want])
        assert np.array_equal(sub.sample_index, index[want]) and np.array_equal(sub.thumbnails(), thumbs[want])
        assert sub.attrs["subset_of"] == "d.h5" and sub.attrs["subset_rows"] == 4
    assert not list(tmp_path.glob("*.partial"))
