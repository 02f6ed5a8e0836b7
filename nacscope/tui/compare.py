"""Several code sets of the same samples, side by side (``nacscope inspect a.h5 b.h5 [c.h5]``).

Every number comes from ``nacscope.analysis`` through one :class:`Session` per file; rows are matched
by sample index (:func:`nacscope.analysis.matching.match_samples`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nacscope.analysis.labels import label
from nacscope.tui.session import Session
from nacscope.tui.summary import fmt

#: The compared numbers: (section, key) of each file's ``analyze_codeset`` result for its code layer.
COMPARE_KEYS = (("layers", "distinct_patterns"), ("layers", "samples_in_collisions"), ("layers", "collision_groups"),
                ("layers", "largest_group"), ("layers", "mixed_label_groups"), ("layers", "dead_bits"),
                ("layers", "stuck_bits"), ("layers", "bit_entropy"), ("retrieval", "map"))


class Comparison:
    """Open sessions on several code sets of the same samples, with their rows matched.

    Raises:
        CodeSetError: a file is unreadable, or the files hold different samples.
    """

    def __init__(self, paths: Sequence[str | Path]) -> None:
        from nacscope.analysis.matching import match_samples

        self.sessions: list[Session] = []
        try:
            for p in paths:
                self.sessions.append(Session(p))
            s = self.sessions
            self.rows = match_samples([x.path.name for x in s], [x.attrs for x in s],
                                      [x.cs.sample_index[: x.n] for x in s])
        except BaseException:
            self.close()
            raise
        self.layers = [_code_layer(x) for x in self.sessions]
        self.summaries: list[dict[str, Any] | None] = [None] * len(self.sessions)

    @property
    def names(self) -> list[str]:
        return [s.path.name for s in self.sessions]

    @property
    def n(self) -> int:
        """Samples present in every file."""
        return len(self.rows[0])

    def analyze(self) -> None:
        """``analyze_codeset`` on each file (cached in the file by the engine)."""
        for i, s in enumerate(self.sessions):
            self.summaries[i] = s.analyze()

    def value(self, f: int, section: str, key: str) -> Any:
        """The engine's number ``summary[section][layer][key]`` of file ``f`` (None until analysed)."""
        summ = self.summaries[f] or {}
        return ((summ.get(section) or {}).get(self.layers[f]) or {}).get(key)

    def table(self) -> list[list[str]]:
        """Rows ``[label, value per file..., difference last - first]`` of the overview."""
        out = []
        for section, key in COMPARE_KEYS:
            vals = [self.value(f, section, key) for f in range(len(self.sessions))]
            spec = ".4f" if key == "map" else ",.2f" if isinstance(vals[0], float) else ","
            diff = (vals[-1] - vals[0]) if all(isinstance(v, (int, float)) for v in vals) else None
            out.append([label(key)] + [fmt(v, spec) for v in vals]
                       + [fmt(diff, "+" + spec.lstrip(",")) if diff is not None else "\u2026"])
        return out

    def sample(self, i: int) -> int:
        """Source-dataset index of the i-th common sample."""
        s = self.sessions[0]
        return int(s.cs.sample_index[int(self.rows[0][i])])

    def neighbours(self, i: int, k: int) -> list[list[tuple[int, int]]]:
        """For each file, the k nearest samples of common sample i: ``(sample index, Hamming distance)``."""
        out = []
        for f, s in enumerate(self.sessions):
            idx, dist = s.neighbours(self.layers[f], int(self.rows[f][i]), k)
            sidx = s.cs.sample_index[: s.n]
            out.append([(int(sidx[r]), int(d)) for r, d in zip(np.asarray(idx), np.asarray(dist))])
        return out

    def close(self) -> None:
        for s in self.sessions:
            s.close()


def _code_layer(s: Session) -> str:
    codes = [l.name for l in s.layers if l.kind == "code"]
    return codes[0] if codes else s.layer_names[-1]


def compare_renderable(cmp: Comparison):
    """The side-by-side table (what ``inspect --no-tui`` prints for several files)."""
    from rich import box
    from rich.table import Table

    t = Table(title=f"{cmp.n:,} common samples", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    t.add_column("metric", no_wrap=True)
    for name, layer in zip(cmp.names, cmp.layers):
        t.add_column(f"{name} ({layer})", justify="right", no_wrap=True)
    t.add_column("\u0394 last-first", justify="right", no_wrap=True)
    for row in cmp.table():
        t.add_row(*row)
    return t
