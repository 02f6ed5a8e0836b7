"""The README's demo table, regenerated from a demo run.

``python -m nacscope.demo.readme [--out DIR] [--write README.md]`` runs ``nacscope demo`` (default
settings, reusing what ``DIR`` holds), prints the table in the README's format and, with
``--write``, replaces the table between the README's markers. ``tests/demo/test_readme_table.py``
checks that the committed table is what a fresh run prints, to the printed precision.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

from nacscope._files import atomic_write
from nacscope.demo.compare import format_value
from nacscope.demo.settings import TITLES, DemoResult, DemoSettings

START, END = "<!-- demo-table:start -->", "<!-- demo-table:end -->"


def readme_rows(settings: DemoSettings) -> list[tuple[str, str]]:
    """(README label, prefix of the demo's row metric) for each row of the README's table."""
    return [
        (f"regions crossed along a segment between two test digits (mean of {settings.segment_pairs}, exact walk)",
         "linear regions crossed along a segment"),
        ("distinct codes (code layer)", "distinct codes (code layer)"),
        ("mAP (Hamming ranking)", "mAP"),
        ("k-NN accuracy on codes", "k-NN accuracy"),
        ("logistic-regression probe on codes", "probe: logistic regression on codes"),
    ]


def readme_table(result: DemoResult, settings: DemoSettings) -> str:
    """The markdown table (header, alignment row, one row per metric) of a demo result."""
    models = tuple(result.analyses)
    lines = ["| metric | " + " | ".join(TITLES[m] for m in models) + " |", "|---|" + "---:|" * len(models)]
    for label, prefix in readme_rows(settings):
        row = next(r for r in result.rows if r["metric"].startswith(prefix))
        lines.append(f"| {label} | " + " | ".join(format_value(row.get(m)) for m in models) + " |")
    return "\n".join(lines)


def committed_table(readme: str) -> str:
    """The table between the README's markers (ValueError if they are missing)."""
    m = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), readme, re.S)
    if m is None:
        raise ValueError(f"no {START} ... {END} block in the README")
    return m.group(1).strip()


def write_table(readme_path: Path, table: str) -> None:
    """Replace the README's table in place (written under a temporary name, then renamed)."""
    text = readme_path.read_text()
    committed_table(text)  # the markers must be there
    new = re.sub(re.escape(START) + r"\n.*?\n" + re.escape(END), lambda _: f"{START}\n{table}\n{END}", text,
                 flags=re.S)
    with atomic_write(readme_path) as tmp:
        tmp.write_text(new)


def main(argv: list[str] | None = None) -> str:
    from nacscope.demo.run import run_demo

    ap = argparse.ArgumentParser(prog="python -m nacscope.demo.readme", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="demo folder (default: a fresh temporary one)")
    ap.add_argument("--write", type=Path, help="README to update in place")
    args = ap.parse_args(argv)
    settings = DemoSettings()
    with tempfile.TemporaryDirectory() as tmp:
        result = run_demo(args.out or Path(tmp) / "demo", settings, log=lambda line: None)
    table = readme_table(result, settings)
    print(table)
    if args.write:
        write_table(args.write, table)
    return table


if __name__ == "__main__":
    main()
