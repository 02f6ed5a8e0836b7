"""The README's demo table is what a fresh ``nacscope demo`` prints (to the printed precision)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nacscope.demo.readme import END, START, committed_table, main, write_table

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.slow  # the whole demo with its default settings: two 20-epoch trainings (~1 min on 2 cores)
def test_the_committed_readme_table_is_what_the_demo_prints(tmp_path):
    printed = main(["--out", str(tmp_path / "demo")])
    assert printed == committed_table(README.read_text())


def test_write_table_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\ntext before\n\n{START}\n| old |\n{END}\n\ntext after\n")
    write_table(readme, "| a | b |\n|---|---:|\n| x | 1 |")
    assert readme.read_text() == (f"# title\n\ntext before\n\n{START}\n| a | b |\n|---|---:|\n| x | 1 |\n{END}"
                                  "\n\ntext after\n")
    assert committed_table(readme.read_text()) == "| a | b |\n|---|---:|\n| x | 1 |"


def test_a_readme_without_markers_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no table here\n")
    with pytest.raises(ValueError, match="demo-table:start"):
        write_table(readme, "| a |")
    assert readme.read_text() == "no table here\n"
