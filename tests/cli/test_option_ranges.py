"""Numeric options out of range are refused in one line before any work (ranges in nacscope.choices)."""

from __future__ import annotations

import pytest

from nacscope.choices import MAX_BITS, MAX_SEED, MAX_THREADS
from tests.helpers import assert_one_line_error, invoke

RANDOM = ["--random-init", "--arch", "mlp", "--dataset", "digits"]


@pytest.mark.parametrize("args, fragment", [
    (["train", "--seed", str(10**20)], "--seed must be in [0, 2**31 - 1]"),
    (["train", "--seed", str(MAX_SEED + 1)], "--seed must be in"),
    (["train", "--seed", "-1"], "--seed must be in"),
    (["train", "--threads", str(MAX_THREADS + 1)], f"--threads must be in [1, {MAX_THREADS}]"),
    (["train", "--threads", "0"], "--threads must be in"),
    (["train", "--head-dim", "0"], "--head-dim must be >= 1"),
    (["train", "--bits", str(MAX_BITS + 1)], f"--bits must be in [1, {MAX_BITS}]"),
    (["train", "--bits", "0"], "--bits must be in"),
    (["train", "--momentum", "-1"], "--momentum must be >= 0"),
    (["train", "--warmup-epochs", "inf"], "--warmup-epochs must be a finite number"),
    (["train", "--stop-after", "0"], "--stop-after must be >= 1"),
    (["layers", *RANDOM, "--bits", "100000000"], f"--bits must be in [1, {MAX_BITS}]"),
    (["dump", *RANDOM, "--bits", "8", "--seed", "-1"], "--seed must be in"),
    (["regions", *RANDOM, "--bits", "8", "--seed", str(10**12)], "--seed must be in"),
])
def test_out_of_range_is_one_line(tmp_path, args, fragment):
    out = ["-o", str(tmp_path / "out")] if args[0] in ("train", "dump") else []
    r = invoke(*args, *out)
    assert_one_line_error(r, fragment)
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_library_speaks_in_parameter_names():
    from nacscope.errors import OptionError
    from nacscope.training import TrainConfig
    from nacscope.training.config import validate

    with pytest.raises(OptionError) as info:
        validate(TrainConfig(stop_after_epochs=0))
    assert str(info.value) == "stop_after_epochs must be >= 1, got 0"
    assert info.value.option == "stop_after_epochs"
