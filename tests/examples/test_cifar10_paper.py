"""examples/cifar10_paper.py (GPU only): its --dry-run checks that every command parses; bad ones fail."""

from __future__ import annotations

import pytest


def test_dry_run_parses_every_command(example, capsys, tmp_path):
    ex = example("cifar10_paper")
    out = tmp_path / "out"  # per test: never a path shared with other workers or users
    cmds = ex.main(["--data-root", str(tmp_path / "no-data"), "--out", str(out), "--dry-run"])
    assert len(cmds) == 3 * 4 + 2
    assert cmds[-1][:2] == ["probe", str(out / "runs" / "linear")] and "paper" in cmds[-1]
    assert [c[0] for c in cmds].count("train") == 4
    assert {c[c.index("--bits") + 1] for c in cmds if c[0] == "train" and "--bits" in c} == {"16", "32", "64"}
    assert "14 commands parse" in capsys.readouterr().out
    assert not out.exists()  # a dry run writes nothing


@pytest.mark.parametrize("argv, error", [
    (["dump", "x", "--no-such-option"], "No such option"),
    (["trian"], "no such command"),
    (["train", "--epochs", "many"], "valid integer"),
])
def test_check_parses_rejects_bad_commands(example, argv, error):
    with pytest.raises(ValueError, match=error):
        example("cifar10_paper").check_parses(argv)


def test_dry_run_rejects_unknown_preset(example, monkeypatch):
    from nacscope.errors import OptionError

    ex = example("cifar10_paper")
    real = ex.commands
    monkeypatch.setattr(ex, "commands", lambda *a: [(["train", "--preset", "paper-cifar10-nope", "--out", "x"], None)]
                        + real(*a))
    with pytest.raises(OptionError, match="unknown preset"):
        ex.main(["--data-root", "/d", "--dry-run"])
