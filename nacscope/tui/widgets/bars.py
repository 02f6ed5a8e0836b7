"""A horizontal bar chart drawn with eighth-block characters."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

_EIGHTHS = " \u258f\u258e\u258d\u258c\u258b\u258a\u2589\u2588"  # 0..8 eighths of a cell


def bar(value: float, vmax: float, width: int) -> str:
    """A bar of ``width`` cells filled to value/vmax, to an eighth of a cell."""
    if vmax <= 0 or width <= 0:
        return ""
    eighths = int(round(max(0.0, min(1.0, value / vmax)) * width * 8))
    full, rest = divmod(eighths, 8)
    return "\u2588" * full + (_EIGHTHS[rest] if rest else "")


class BarChart(Widget):
    """Labelled horizontal bars: ``set_data([(label, value), ...])``."""

    DEFAULT_CSS = """
    BarChart { height: auto; width: 1fr; }
    """

    def __init__(self, title: str = "", color: str = "cyan", **kw) -> None:
        super().__init__(**kw)
        self.title = title
        self.color = color
        self.data: list[tuple[str, float]] = []

    def set_data(self, data: list[tuple[str, float]], title: str | None = None) -> None:
        self.data = list(data)
        if title is not None:
            self.title = title
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self.data) + (1 if self.title else 0) or 1

    def render(self) -> Text:
        out = Text()
        if self.title:
            out.append(self.title + "\n", style="bold")
        if not self.data:
            out.append("(nothing to show)", style="dim")
            return out
        lw = min(24, max(len(label) for label, _ in self.data))
        vals = [f"{v:,.0f}" if float(v).is_integer() else f"{v:,.3f}" for _, v in self.data]
        vw = max(len(v) for v in vals)
        width = max(1, self.size.width - lw - vw - 3)
        vmax = max(float(v) for _, v in self.data)
        for i, ((label, v), s) in enumerate(zip(self.data, vals)):
            out.append(f"{label[:lw]:>{lw}} ")
            out.append(f"{bar(float(v), vmax, width):<{width}}", style=self.color)
            out.append(f" {s:>{vw}}")
            if i < len(self.data) - 1:
                out.append("\n")
        return out
