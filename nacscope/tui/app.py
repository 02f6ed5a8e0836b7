"""The ``nacscope inspect`` application: modes (screens), the layer switcher, jobs, following."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.worker import Worker, get_current_worker

from nacscope.tui.jobs import JobCancelled, JobState, describe_error, make_progress
from nacscope.tui.screens import (
    CollisionsScreen,
    HelpScreen,
    LayerPicker,
    NeighboursScreen,
    OverviewScreen,
    ProjectionScreen,
    RegionsScreen,
)
from nacscope.tui.session import Session

SCREENS_ORDER = ("overview", "regions", "collisions", "neighbours", "projection")


class InspectApp(App):
    """Browse one code set. Every number shown comes from ``nacscope.analysis`` via the session."""

    CSS_PATH = "nacscope.tcss"
    TITLE = "nacscope inspect"
    MODES = {
        "overview": OverviewScreen,
        "regions": RegionsScreen,
        "collisions": CollisionsScreen,
        "neighbours": NeighboursScreen,
        "projection": ProjectionScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        Binding("1", "show('overview')", "Overview"),
        Binding("2", "show('regions')", "Regions"),
        Binding("3", "show('collisions')", "Collisions"),
        Binding("4", "show('neighbours')", "Neighbours"),
        Binding("5", "show('projection')", "Projection"),
        Binding("left_square_bracket", "cycle_layer(-1)", "\u25c2layer"),
        Binding("right_square_bracket", "cycle_layer(1)", "layer\u25b8"),
        Binding("L", "pick_layer", "Pick layer", show=False),
        Binding("question_mark,f1", "help", "Help"),
        Binding("escape", "cancel_job", "Cancel job", show=False),
        Binding("ctrl+r", "reanalyze", "Re-analyse", show=False),
        Binding("q", "quit", "Quit"),
    ]

    layer: var[str] = var("")
    summary: var[dict | None] = var(None, always_update=True)
    job: var[JobState] = var(JobState, always_update=True)
    rows: var[int] = var(0)

    def __init__(self, session: Session, layer: str | None = None, *, plain_images: bool = False,
                 analyze_on_open: bool = True, follow_interval_s: float = 1.0,
                 freeze_gc: bool | None = None) -> None:
        super().__init__()
        self.freeze_gc = freeze_gc  # None: in a real terminal, not headless (tests); see _freeze_gc
        self.session = session
        if layer is not None and layer not in session.layer_names:
            from nacscope.errors import OptionError

            raise OptionError(f"no layer {layer!r}; available: {', '.join(session.layer_names)}")
        self._initial_layer = layer or self._first_code_layer()
        self.plain_images = plain_images
        self.analyze_on_open = analyze_on_open
        self.follow_interval_s = follow_interval_s
        self._job_worker: Worker | None = None
        self._gc_frozen = False
        self.sub_title = str(session.path.name)
        _ = (self.layer, self.summary, self.job, self.rows)  # initialise the reactives before screens watch them

    def _first_code_layer(self) -> str:
        codes = [l.name for l in self.session.layers if l.kind == "code"]
        return codes[0] if codes else self.session.layer_names[-1]

    def on_mount(self) -> None:
        self.layer = self._initial_layer
        self.rows = self.session.n
        if self.session.following:
            self.set_interval(self.follow_interval_s, self.follow)
            self.job = JobState(last=f"following a file being written: {self.session.n:,} rows so far")
        if self.analyze_on_open:
            self.run_analysis()
        self.set_timer(0.5, self._premount_next)

    def _premount_next(self) -> None:
        """Build the other screens one at a time while the user reads the overview, so that the
        first visit to each is as fast as later ones (mounting a screen costs a few hundred ms)."""
        todo = [m for m in SCREENS_ORDER if not self._screen_stacks.get(m)]
        if not self.is_running or self._closing_down:
            return
        if not todo:
            self._freeze_gc()
        elif self._premount(todo[0]):
            self.set_timer(0.3, self._premount_next)

    @property
    def _closing_down(self) -> bool:
        """The app is exiting: a screen mounted now would compose into a closing app."""
        return bool(getattr(self, "_exit", False))

    def _freeze_gc(self) -> None:
        """Once every screen is built: collect, then move what exists into the permanent generation.

        The open app holds ~160,000 objects that Python's cyclic collector rescans on every full
        collection: 45-75 ms pauses on a 2-core CPU (more as the heap grows), which land on random keys
        (``benchmarks/tui_open.py``). Frozen objects are skipped by later collections; they are
        unfrozen when the app ends. Off by default when headless (tests run many apps in one process).
        """
        if not (self.freeze_gc if self.freeze_gc is not None else not self.is_headless) or self._gc_frozen:
            return
        import gc

        gc.collect()
        gc.freeze()
        self._gc_frozen = True

    def on_unmount(self) -> None:
        if self._gc_frozen:
            import gc

            gc.unfreeze()
            self._gc_frozen = False

    def _premount(self, mode: str) -> bool:
        """Mount the screen of ``mode`` without showing it; False if it exists or cannot be pre-mounted."""
        init = getattr(self, "_init_mode", None)  # Textual's own mode set-up; skipped if it ever goes
        if init is None or self._screen_stacks.get(mode) or self._closing_down:
            return False
        try:
            init(mode)
        except Exception:  # pre-mounting is an optimisation only
            return False
        # Textual re-parses the whole stylesheet on the first switch to a screen whose CSS counter lags
        # the app's (20-25 ms on a 2-core CPU, on top of the switch). A pre-mounted screen's widgets
        # are styled with the current rules as they mount, so mark it current; a later CSS or theme
        # change still bumps the app's counter and triggers the refresh as usual.
        screen = self._screen_stacks[mode][0] if self._screen_stacks.get(mode) else None
        if screen is not None and hasattr(screen, "_css_update_count"):
            screen._css_update_count = self._css_update_count
        return True

    # -- navigation --------------------------------------------------------------------------------
    #: How long updates are held while switching screens. Textual's ``switch_mode`` holds them for
    #: 50 ms to mask the transition: half of the 100 ms a key may take. The screens here are mounted
    #: ahead and resume in one pass, so one frame (1/60 s) is enough; with the other fixes this took
    #: first visits from 90-106 to 43-71 ms median, key event to frame written (``benchmarks/tui_open.py``).
    SWITCH_MASK_S = 1 / 60

    def delay_update(self, delay: float | None = None) -> None:
        """Textual's ``delay_update`` with a one-frame default (see ``SWITCH_MASK_S``)."""
        super().delay_update(self.SWITCH_MASK_S if delay is None else delay)

    def action_show(self, mode: str) -> None:
        if self.current_mode != mode:
            self._premount(mode)  # not mounted yet: mounted here, so that the switch skips a CSS re-parse
            self.switch_mode(mode)

    def action_cycle_layer(self, step: int) -> None:
        names = self.session.layer_names
        i = names.index(self.layer) if self.layer in names else 0
        self.layer = names[(i + step) % len(names)]

    def action_pick_layer(self) -> None:
        def chosen(name: str | None) -> None:
            if name:
                self.layer = name

        self.push_screen(LayerPicker(self.session.layer_names, self.layer), chosen)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def open_neighbours(self, row: int) -> None:
        """Show a sample's neighbours (from any list in the app)."""
        self.action_show("neighbours")
        screen = self.get_screen_for_mode("neighbours")
        screen.set_query(int(row))

    def get_screen_for_mode(self, mode: str) -> Any:
        return self._screen_stacks[mode][0] if self._screen_stacks.get(mode) else self.screen

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for mode in SCREENS_ORDER:
            yield SystemCommand(f"Show {mode}", f"switch to the {mode} screen", lambda m=mode: self.action_show(m))
        for name in self.session.layer_names:
            yield SystemCommand(f"Layer {name}", "switch every screen to this layer", lambda n=name: setattr(self, "layer", n))
        yield SystemCommand("Re-analyse", "recompute the analyses (ignore the cache)", self.action_reanalyze)
        yield SystemCommand("Cancel job", "stop the running computation", self.action_cancel_job)
        for binding in getattr(screen, "BINDINGS", []):
            if isinstance(binding, Binding) and binding.description:
                action = binding.action
                yield SystemCommand(binding.description, f"key {binding.key}",
                                    lambda a=action, s=screen: self.run_action(a, s))

    # -- analyses --------------------------------------------------------------------------------------
    def run_analysis(self, use_cache: bool = True) -> None:
        def done(result: dict) -> None:
            self.summary = result

        self.start_job("analysing", lambda progress: self.session.analyze(progress, use_cache=use_cache), done)

    def action_reanalyze(self) -> None:
        self.run_analysis(use_cache=False)

    # -- jobs --------------------------------------------------------------------------------------------
    @property
    def job_running(self) -> bool:
        return self._job_worker is not None and self._job_worker.is_running

    def start_job(self, title: str, fn: Callable[[Callable], Any], done: Callable[[Any], None]) -> bool:
        """Run ``fn(progress)`` in a thread worker; ``done(result)`` runs on the UI thread.

        One job at a time: returns False (and says so) while another runs.
        """
        if self.job_running:
            self.notify(f"busy: {self.job.title} (Esc cancels it)", severity="warning")
            return False
        started = time.monotonic()
        self.job = JobState(title=title, running=True, started=started)

        def post(d: int, t: int, m: str) -> None:
            self.job = JobState(title=title, done=d, total=t, message=m, running=True, started=started)

        def work() -> None:
            worker = get_current_worker()
            progress = make_progress(lambda d, t, m: self.call_from_thread(post, d, t, m),
                                     lambda: worker.is_cancelled)
            try:
                result = fn(progress)
            except JobCancelled:
                self.call_from_thread(self._job_end, f"{title}: cancelled", "warning")
                return
            except Exception as exc:  # shown in the UI, never a traceback
                self.call_from_thread(self._job_end, f"{title} failed: {describe_error(exc)}", "error")
                return
            if worker.is_cancelled:
                return
            self.call_from_thread(done, result)
            self.call_from_thread(self._job_end, f"{title}: done in {time.monotonic() - started:.1f} s", None)

        self._job_worker = self.run_worker(work, name=title, group="job", thread=True, exit_on_error=False)
        return True

    #: A finished job's outcome stays on the job line this long, then the line shows the idle state.
    JOB_LINE_CLEAR_S = 6.0

    def _job_end(self, message: str, severity: str | None) -> None:
        state = JobState(last=message)
        self.job = state
        if severity:
            self.notify(message, severity=severity)  # type: ignore[arg-type]
        self.set_timer(self.JOB_LINE_CLEAR_S, lambda: self._clear_job_line(state))

    def _clear_job_line(self, state: JobState) -> None:
        """Back to the idle line, unless something newer is on it."""
        if self.job is state:
            self.job = JobState(last=self.idle_text())

    def idle_text(self) -> str:
        """What the job line says when no job runs."""
        if self.session.following:
            return f"dump in progress: {self.session.n:,} rows so far (the view follows the file)"
        return "ready"

    def action_cancel_job(self) -> None:
        from textual.widgets import Input

        if isinstance(self.focused, Input):  # Esc leaves a text box first
            auto = getattr(self.screen, "AUTO_FOCUS", None)
            if auto:
                self.screen.query_one(auto).focus()
            return
        if self.job_running and self._job_worker is not None:
            self._job_worker.cancel()
            self.job = JobState(last=f"{self.job.title}: cancelling\u2026")

    def run_quick(self, fn: Callable[[], Any], done: Callable[[Any], None], group: str) -> None:
        """A short computation off the UI thread; a newer one in the same group replaces it."""

        def work() -> None:
            worker = get_current_worker()
            try:
                result = fn()
            except Exception as exc:
                self.call_from_thread(self.notify, describe_error(exc), severity="error")
                return
            if not worker.is_cancelled:
                self.call_from_thread(done, result)

        self.run_worker(work, group=group, thread=True, exclusive=True, exit_on_error=False)

    # -- following a file being written ---------------------------------------------------------------
    def follow(self) -> None:
        if self.job_running or not self.session.following:
            return
        before = self.session.n
        try:
            n, finished = self.session.refresh()
        except Exception as exc:
            self.job = JobState(last=f"cannot follow the file: {describe_error(exc)}")
            return
        self.rows = n
        if finished:
            self.job = JobState(last=f"writer finished: {n:,} rows")
            self.notify(f"{self.session.path.name} is complete: {n:,} rows")
            self.run_analysis()
        elif n != before:
            self.job = JobState(last=f"following a file being written: {n:,} rows so far")
            self.summary = None
