"""What every screen shares: header, job line, footer, and following the app's layer and results."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Header

from nacscope.tui.jobs import JobLine
from nacscope.tui.widgets.keybar import KeyBar

if TYPE_CHECKING:
    from nacscope.tui.app import InspectApp
    from nacscope.tui.session import Session


class NacScreen(Screen):
    """A screen that redraws when the app's layer, analysis summary or row count change.

    Subclasses implement ``body()`` (their widgets) and ``update_view()`` (fill them from the
    session for ``self.code_layer``). Updates of hidden screens are deferred until they are shown.
    """

    TITLE_TEXT = ""

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield from self.body()
        yield JobLine(id="jobline")
        yield KeyBar()

    def body(self) -> ComposeResult:  # pragma: no cover - abstract
        return iter(())

    @property
    def nac(self) -> "InspectApp":
        return self.app  # type: ignore[return-value]

    @property
    def session(self) -> "Session":
        return self.nac.session

    @property
    def code_layer(self) -> str:
        return self.nac.layer

    @property
    def summary(self) -> dict[str, Any] | None:
        return self.nac.summary

    def on_mount(self) -> None:
        self._dirty = True
        self.watch(self.app, "layer", self._invalidate, init=False)
        self.watch(self.app, "summary", self._invalidate, init=False)
        self.watch(self.app, "rows", self._invalidate, init=False)
        self._update()

    def _invalidate(self, *_: Any) -> None:
        self._dirty = True
        if self.is_current:
            self._update()

    def on_screen_resume(self) -> None:
        self.sub_title = self.subtitle_text()
        for bar in self.query(KeyBar):
            bar.refresh_keys()
        if getattr(self, "_dirty", False):
            self._update()

    def subtitle_text(self) -> str:
        """The header's subtitle: screen, file and layer (one format, whichever path sets it)."""
        return f"{self.TITLE_TEXT} \u00b7 {self.session.path.name} \u00b7 layer {self.code_layer}"

    def _update(self) -> None:
        if getattr(self, "_updating", False):  # a watcher fired while we read the app's state
            self._dirty = True
            return
        self._updating = True
        try:
            self._update_now()
        finally:
            self._updating = False

    def _update_now(self) -> None:
        self._dirty = False
        self.title = "nacscope inspect"
        self.sub_title = self.subtitle_text()
        if self.code_layer:
            self.update_view()

    def update_view(self) -> None:  # pragma: no cover - abstract
        pass

    # -- helpers -------------------------------------------------------------------------------------
    def layer_result(self, section: str = "layers") -> dict[str, Any] | None:
        """The analysis engine's result for the current layer, e.g. ``summary['layers'][layer]``."""
        s = self.summary
        if not s:
            return None
        return (s.get(section) or {}).get(self.code_layer)
