"""A code as text that fits a panel: bytes of 8 bits, as many per line as the width allows."""

from __future__ import annotations


def code_lines(bits: str, width: int, *, max_lines: int = 4) -> str:
    """``"0101…"`` as lines of space-separated 8-bit groups, each line at most ``width`` characters.

    Lines break between groups, never inside one; beyond ``max_lines`` lines the rest is cut with ``…``.
    """
    groups = [bits[i : i + 8] for i in range(0, len(bits), 8)]
    per_line = max(1, (max(8, width) + 1) // 9)
    lines = [" ".join(groups[i : i + per_line]) for i in range(0, len(groups), per_line)]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] += " \u2026"
    return "\n".join(lines)
