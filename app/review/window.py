"""The review window: one decision per second on the predicted L3 and T12 slices, study after study.

Left, the queue (state of each level, progress). Right, the current study: frontal and sagittal
projections with a line per level and a green tick named by its level at every vertebra the classical
count found, beside the axial slice at the active level's pick. Under the study's name, its status: the
count in a few words, and each pick whose levels disagree ("levels disagree — check"), that is in view
but nobody found ("in view, not found — check": place it, or press X), or that came from the spine count
rather than the network. Keys (also in
the Review menu and the help line): Enter accepts the active level and moves on, Up/Down move its pick
one slice (Shift: five), Tab switches level, F flags, X or 0 says "not in scan", N/P change study,
Ctrl+W or Ctrl+Q closes the window.
Every decision is written to the picks CSV at once (:meth:`PicksFile.set`: atomic, with an audit
line), so closing mid-queue loses nothing and reopening resumes at the first unreviewed study.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from app.review import decisions
from app.review.axial_view import AxialView
from app.review.loading import LoadedStudy, LocatorHolder, StudyLoader, TimeLeft, time_left_text
from app.review.projection_view import ProjectionView, level_colour, projection_layout
from app.review.queue import QueueTable, ReviewQueue
from app.review.sources import ReviewSource, open_review
from ctviewer.errors import InputError
from ctviewer.workflows.slice_locator.combine import combine, expected_centre, level_remark, nearest_slice
from ctviewer.workflows.slice_locator.picks import NOT_FOUND

HELP = ("Enter accept   ↑/↓ move 1 slice (Shift: 5)   drag a line   Tab next level   F flag for a second look   "
        "X or 0 not in scan   N/P next/previous study")


class ReviewWindow(QMainWindow):
    """Review the picks of a queue of studies (see the module docstring)."""

    #: the current study is on screen with its lines (exam_id)
    study_shown = Signal(str)
    #: a row was written to the CSV: a decision or a new prediction (the pick as stored)
    pick_written = Signal(object)

    def __init__(self, source: ReviewSource, locator_name: str | None = None, predict: bool = True, parent=None,
                 locator=None):
        super().__init__(parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window)
        self.picks = source.picks
        self.queue = ReviewQueue(source.picks, source.exam_ids, source.paths, levels=source.levels, parent=self)
        self.levels = self.queue.levels
        self.active_level = self.levels[0]
        holder = LocatorHolder(locator_name, self.levels, locator=locator) if predict else None
        self.loader = StudyLoader(holder, self)
        self.loaded: LoadedStudy | None = None
        self._preview: dict[str, int] = {}   # level -> slice while its line is being dragged
        self._clocks: dict[str, TimeLeft] = {}   # exam_id -> its preparation's progress and time left
        self.setWindowTitle(f"Review slice picks — {self.picks.path.name}")
        self.resize(1500, 900)
        self._build()
        self._build_actions()
        self.loader.loaded.connect(self._on_loaded)
        self.loader.failed.connect(self._on_failed)
        self.loader.progress.connect(self._on_progress)
        self.queue.current_changed.connect(lambda _: self._show_current())
        start = self.queue.first_unreviewed()
        self.queue.current = start if start is not None else 0
        self.table.refresh_all()
        self.go_to(self.queue.current)   # resumes at the first unreviewed study, its first undecided level

    @classmethod
    def open_paths(cls, paths, csv_path=None, locator_name: str | None = None, parent=None) -> "ReviewWindow":
        """A window on a folder of studies, study files or a picks CSV; InputError when unusable."""
        return cls(open_review(paths, csv_path), locator_name=locator_name, parent=parent)

    # -- building ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.table = QueueTable(self.queue)
        self.table.study_clicked.connect(self.go_to)
        self.progress_label = QLabel("")
        self.progress_label.setObjectName("review_progress")
        export = QPushButton("Export L3 (seed format)…")
        export.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        export.clicked.connect(lambda: self.export_dialog("L3"))
        left = QWidget()
        col = QVBoxLayout(left)
        col.addWidget(self.progress_label)
        col.addWidget(self.table, 1)
        col.addWidget(export)
        self.header = QLabel("")
        self.header.setObjectName("review_header")
        self.study_status = QLabel("")
        self.study_status.setObjectName("review_study_status")
        self.study_status.setWordWrap(True)
        self.frontal = ProjectionView("frontal")
        self.sagittal = ProjectionView("sagittal")
        self.axial = AxialView()
        for view in (self.frontal, self.sagittal):
            view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            view.line_dragged.connect(self._line_dragged)
            view.line_dropped.connect(self._line_dropped)
        self.axial.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # frontal | sagittal, turned one above the other for a short scan (see _fit_projections)
        self.projection_pair = QSplitter()
        self.projection_pair.addWidget(self.frontal)
        self.projection_pair.addWidget(self.sagittal)
        self.images = images = QSplitter()
        images.addWidget(self.projection_pair)
        images.addWidget(self.axial)
        images.setStretchFactor(0, 4)
        images.setStretchFactor(1, 3)
        images.installEventFilter(self)
        right = QWidget()
        rcol = QVBoxLayout(right)
        rcol.addWidget(self.header)
        rcol.addWidget(self.study_status)
        rcol.addWidget(self._build_load_row())
        rcol.addWidget(images, 1)
        help_line = QLabel(HELP)
        help_line.setObjectName("review_help")
        rcol.addWidget(help_line)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 4)
        split.setSizes([420, 1080])
        self.setCentralWidget(split)

    def _build_load_row(self) -> QWidget:
        """The current study's preparation, over the images it will fill: a bar and the step with the
        time left (a large scan takes minutes; the user sees it move and knows how long to wait)."""
        self.load_row = QWidget()
        row = QHBoxLayout(self.load_row)
        row.setContentsMargins(0, 0, 0, 0)
        self.load_bar = QProgressBar()
        self.load_bar.setObjectName("review_load_bar")
        self.load_bar.setRange(0, 1000)
        self.load_bar.setFixedWidth(260)
        self.load_text = QLabel("")
        self.load_text.setObjectName("review_load_text")
        row.addWidget(self.load_bar)
        row.addWidget(self.load_text, 1)
        self.load_row.hide()
        # the time left keeps counting between progress reports (the model loads for a while in one step)
        self._load_timer = QTimer(self)
        self._load_timer.setInterval(1000)
        self._load_timer.timeout.connect(self._show_load_progress)
        return self.load_row

    def _build_actions(self) -> None:
        menu = self.menuBar().addMenu("&Review")
        keys = [
            ("Accept", self.accept_active, ["Return", "Enter"]),
            ("Move up one slice", lambda: self.step(1), ["Up"]),
            ("Move down one slice", lambda: self.step(-1), ["Down"]),
            ("Move up five slices", lambda: self.step(5), ["Shift+Up"]),
            ("Move down five slices", lambda: self.step(-5), ["Shift+Down"]),
            ("Switch level", self.switch_level, ["Tab", "Shift+Tab", "Backtab"]),
            ("Flag for a second look", self.flag, ["F"]),
            ("Not in scan", self.not_in_scan, ["X", "0"]),
            ("Next study", self.next_study, ["N"]),
            ("Previous study", self.previous_study, ["P"]),
        ]
        for text, slot, shortcuts in keys:
            action = QAction(text, self)
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(slot)
            menu.addAction(action)
        files = self.menuBar().addMenu("&File")
        for level in self.levels:
            action = QAction(f"Export {level} in the seed's format (exam_id,{level}_slice_num)…", self)
            action.triggered.connect(lambda _=False, lv=level: self.export_dialog(lv))
            files.addAction(action)
        close = QAction("&Close", self)
        # Ctrl+W and Ctrl+Q both close the queue (nothing to save: every decision is on disk already)
        close.setShortcuts([*QKeySequence.keyBindings(QKeySequence.StandardKey.Close), QKeySequence("Ctrl+Q")])
        close.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        close.triggered.connect(self.close)
        files.addAction(close)

    # -- the current study ---------------------------------------------------------------------
    @property
    def exam_id(self) -> str | None:
        return self.queue.exam_id

    def pick(self, level: str):
        """The pick of ``level`` of the current study as on disk (a placeholder where there is none)."""
        exam = self.exam_id
        return self.picks.get(exam, level) or decisions.empty_pick(
            exam, level, self.loaded.projections if self.loaded else None)

    def _show_current(self) -> None:
        exam = self.exam_id
        if exam is None:
            self.header.setText("No studies to review")
            self.study_status.setText("")
            return
        self._preview.clear()
        index = self.queue.current
        self._request_around(index)
        loaded = self.loader.get(exam)
        self.header.setText(f"<b>{exam}</b>   study {index + 1} of {len(self.queue)}")
        if loaded is not self.loaded:
            self.loaded = loaded
            self._fit_projections()
            for view, name in ((self.frontal, "frontal"), (self.sagittal, "sagittal")):
                view.set_image(None if loaded is None else getattr(loaded.projections, name),
                               None if loaded is None else loaded.projections)
                view.set_ticks(None if loaded is None else loaded.spine)
        if loaded is None:
            self.study_status.setText("")
            reason = self.queue.errors.get(exam)
            self.axial.clear(f"<b>{exam}</b> cannot be shown: {reason}" if reason else f"Loading {exam}…")
            self._update_progress()
            self._show_load_progress()
            return
        self._end_load_progress()
        self._refresh_picks()
        self.study_shown.emit(exam)

    def _fit_projections(self) -> None:
        """Give the projections the panel shape their images need (side by side for a long scan, stacked
        for a short one, above the axial slice for a very short one) and the room that shows them whole at
        1 mm = 1 mm; the axial slice the rest (see :func:`projection_layout`)."""
        if self.loaded is None or not hasattr(self, "images"):   # resized before it was built
            return
        proj = self.loaded.projections
        rows, frontal_cols = proj.frontal.shape
        width, height = self.images.width(), self.images.height()
        above, stacked, extent = projection_layout(rows, frontal_cols, proj.sagittal.shape[1], width, height)
        vertical, horizontal = Qt.Orientation.Vertical, Qt.Orientation.Horizontal
        self.images.setOrientation(vertical if above else horizontal)
        self.projection_pair.setOrientation(vertical if stacked else horizontal)
        self.projection_pair.setSizes([1000, 1000])   # two equal panels
        self.images.setSizes([extent, (height if above else width) - extent])

    def eventFilter(self, watched, ev) -> bool:
        # the images' area changes with the window and when the load bar above it goes: fit them again
        if watched is getattr(self, "images", None) and ev.type() == QEvent.Type.Resize:
            self._fit_projections()
        return super().eventFilter(watched, ev)

    def _request_around(self, index: int) -> None:
        """Load the current study first, then the next one (prefetch); keep the previous one."""
        ids = self.queue.exam_ids
        around = [ids[i] for i in (index, index + 1, index - 1) if 0 <= i < len(ids)]
        self.loader.keep_only(around)
        for exam in around[:2]:
            predict = any(self.picks.get(exam, level) is None for level in self.levels)
            if self.loader.request(exam, self.queue.paths.get(exam), predict):
                self._clocks.pop(exam, None)   # a study cancelled earlier starts its clock again
                self.queue.set_load_state(exam, "waiting")

    def _refresh_picks(self) -> None:
        if self.loaded is None:
            return
        n = len(self.loaded.projections.slice_z_mm)
        for level in self.levels:
            pick = self.pick(level)
            k = self._preview.get(level, pick.slice_index)
            if k is not None and not 0 <= k < n:   # a CSV row made on another reading of the study
                self.show_error(f"{self.exam_id} {level}: slice {k} is outside this scan ({n} slices)")
                k = None
            text = f"{level}  {pick.confidence:.0%}" if pick.confidence is not None else level
            state = decisions.state_of(pick)
            if level_remark(pick):
                text += f"  {level_remark(pick)}"
            elif state != "predicted":
                text += f"  {state.replace('_', ' ')}" if state != "none" else "  not placed"
            for view in (self.frontal, self.sagittal):
                view.set_pick(level, k, text, level == self.active_level)
        active = self.pick(self.active_level)
        k = self._preview.get(self.active_level, active.slice_index)
        k = k if k is not None and 0 <= k < n else None
        status = level_remark(active) or decisions.state_of(active).replace("_", " ")
        self.axial.show_slice(self.loaded.volume, k, self.active_level,
                              extra="dragging" if self.active_level in self._preview else status)
        self.study_status.setText(self.study_status_text())
        self.table.refresh_study(self.exam_id)
        self._update_progress()

    def study_status_text(self) -> str:
        """The current study's status: what the count found, and each pick a person must look at
        twice ("levels disagree — check", "from the spine count"), with where the count puts it."""
        from ctviewer.workflows.slice_locator.vertebrae import count_text

        spine = self.loaded.spine if self.loaded is not None else None
        lines = []
        for level in self.levels:
            pick = self.picks.get(self.exam_id, level)
            remark = level_remark(pick)
            if not remark and pick is not None and pick.status == "predicted" and spine is not None:
                # a prediction written without the count (an older CSV): cross-check it now, by the same rules
                [checked] = combine({level: pick}, spine, [level], self.exam_id, self.loaded.projections)
                remark = level_remark(checked.pick)
            if not remark:
                continue
            v = spine.find(level) if spine is not None and spine.found else None
            where = f" (the count: slices {v.bottom_slice}–{v.top_slice})" if v is not None else ""
            if pick is not None and pick.status == NOT_FOUND and spine is not None and spine.found:
                where = self._expected_text(level, spine)
            lines.append(f"{level}: {remark}{where}")
        if self.loaded is not None:
            lines.append(count_text(spine) or "count: " + "; ".join(self.loaded.warnings or ["not made"]))
        return "\n".join(lines)

    def _expected_text(self, level: str, spine) -> str:
        """`` (expected near slice 89)``: where the count reckons a level nobody found should lie."""
        expected = expected_centre(level, spine)
        if expected is None:
            return ""
        return f" (expected near slice {nearest_slice(expected[0], self.loaded.projections.slice_z_mm)})"

    def _update_progress(self) -> None:
        r, g, b = level_colour(self.active_level)
        self.progress_label.setText(f"{self.queue.progress_text()}   active level: "
                                    f"<b style='color: rgb({r},{g},{b})'>{self.active_level}</b>")

    # -- loading callbacks ---------------------------------------------------------------------
    def _on_loaded(self, exam_id: str, loaded: LoadedStudy) -> None:
        new = [p for p in loaded.predicted if (old := self.picks.get(p.exam_id, p.level)) is None
               or not old.is_reviewed]
        if new:
            notes = {p.key: loaded.notes[p.level] for p in new if loaded.notes.get(p.level)}
            self._write(lambda: self.picks.set_many(new, "predict", notes=notes))
        if loaded.note:
            self.statusBar().showMessage(f"{exam_id}: {loaded.note}", 10000)
        if loaded.projections.warnings:
            self.statusBar().showMessage(f"{exam_id}: {'; '.join(loaded.projections.warnings)}", 10000)
        self._clocks.pop(exam_id, None)
        self.queue.set_load_state(exam_id, "ready" if not loaded.note else loaded.note)
        if exam_id == self.exam_id:
            self._show_current()

    def _on_failed(self, exam_id: str, reason: str) -> None:
        self._clocks.pop(exam_id, None)
        self.queue.set_load_state(exam_id, reason, error=True)
        if exam_id == self.exam_id:
            self._show_current()

    def _on_progress(self, exam_id: str, fraction: float, message: str) -> None:
        clock = self._clocks.setdefault(exam_id, TimeLeft())
        clock.update(fraction, message)
        left = time_left_text(clock.seconds_left())
        self.queue.set_load_state(exam_id, f"loading {int(clock.fraction * 100)}%, {left}")
        if exam_id == self.exam_id:
            self._show_load_progress()

    def _show_load_progress(self) -> None:
        """The current study's bar and time left, while it is being prepared."""
        exam = self.exam_id
        if exam is None or self.loader.get(exam) is not None or exam in self.queue.errors:
            self._end_load_progress()
            return
        clock = self._clocks.get(exam)
        self.load_row.show()
        if not self._load_timer.isActive():
            self._load_timer.start()
        if clock is None:   # asked for, waiting for the study before it to be read
            self.load_bar.setValue(0)
            self.load_text.setText(f"{exam}: waiting to be read")
            return
        self.load_bar.setValue(int(round(clock.fraction * 1000)))
        self.load_text.setText(f"<b>{exam}</b>: {clock.text()}")

    def _end_load_progress(self) -> None:
        self._load_timer.stop()
        self.load_row.hide()

    # -- decisions -----------------------------------------------------------------------------
    def _write(self, record) -> bool:
        try:
            stored = record()
        except InputError as exc:   # the disk refused: nothing changed, the user must know
            self.show_error(str(exc))
            return False
        for pick in stored if isinstance(stored, list) else [stored]:
            self.pick_written.emit(pick)
        return True

    def _decide(self, change, *args) -> bool:
        """Apply ``change(pick, *args)`` to the active level and write it; False when nothing was."""
        if self.exam_id is None:
            return False
        result = change(self.pick(self.active_level), *args)
        if result is None:
            self._say_not_placed()
            return False
        return self._record(*result)

    def _record(self, pick, action: str) -> bool:
        if not self._write(lambda: self.picks.set(pick, action)):
            return False
        self.queue.study_changed.emit(self.exam_id)
        self._refresh_picks()
        self._update_progress()   # also where the study is not shown (a flag on an unreadable study)
        return True

    def _say_not_placed(self) -> None:
        pick = self.picks.get(self.exam_id, self.active_level) if self.exam_id else None
        what = "is in view but was not found" if pick is not None and pick.status == NOT_FOUND else "is not placed"
        self.statusBar().showMessage(f"{self.active_level} {what}: move or drag its line, "
                                     "or press X if it is not in the scan", 8000)

    def _need_study(self) -> bool:
        if self.loaded is None:
            reason = self.queue.errors.get(self.exam_id or "")
            self.statusBar().showMessage(f"{self.exam_id} cannot be shown: {reason}" if reason
                                         else f"{self.exam_id} is still loading", 5000)
            return False
        return True

    def accept_active(self) -> None:
        """Enter: accept the active level, then go to the next undecided level or study."""
        if self.exam_id in self.queue.errors:
            self.next_study()
            return
        if not self._need_study():
            return
        result = decisions.accept(self.pick(self.active_level))
        if result is not None:               # a prediction, or a flag cleared after the second look
            if not self._record(*result):
                return
        elif not decisions.is_decided(self.picks.get(self.exam_id, self.active_level)):
            self._say_not_placed()
            return
        self._advance()                       # a correction stays a correction

    def _advance(self) -> None:
        """After a decision: the study's next undecided level, else the next study left to review."""
        undecided = self._undecided(self.exam_id)
        if undecided:
            self.set_active_level(undecided[0])
            return
        current = self.queue.current
        following = self.queue.first_unreviewed(current + 1)
        if following is None:                 # studies skipped earlier wait before the end
            following = self.queue.first_unreviewed(0)
            following = None if following == current else following
        if following is None and current + 1 < len(self.queue):
            following = current + 1
        if following is None:
            self.statusBar().showMessage(f"End of the queue: {self.queue.progress_text()}", 10000)
            return
        self.go_to(following)

    def _undecided(self, exam_id: str) -> list[str]:
        return [lv for lv in self.levels if not decisions.is_decided(self.picks.get(exam_id, lv))]

    def step(self, steps: int) -> None:
        if self._need_study():
            self._decide(decisions.step, steps, self.loaded.projections)

    def flag(self) -> None:
        """F: ask for a second look at the active level, and move on."""
        if self._decide(decisions.flag):
            self._advance()

    def not_in_scan(self) -> None:
        """X or 0: the active level is not in this scan; move on."""
        if self._need_study() and self._decide(decisions.not_in_scan):
            self._advance()

    def _line_dragged(self, level: str, slice_index: int) -> None:
        self.active_level = level
        self._preview[level] = slice_index
        self._refresh_picks()

    def _line_dropped(self, level: str, slice_index: int) -> None:
        self._preview.pop(level, None)
        self.active_level = level
        if self.pick(level).slice_index == slice_index:
            self._refresh_picks()   # dropped where it was: no decision
            return
        self._decide(decisions.move_to, slice_index, self.loaded.projections)

    # -- navigation ----------------------------------------------------------------------------
    def go_to(self, index: int) -> None:
        """Show study ``index``, with its first undecided level active."""
        if not 0 <= index < len(self.queue):
            return
        undecided = self._undecided(self.queue.exam_ids[index])
        self.active_level = undecided[0] if undecided else self.levels[0]
        if index == self.queue.current:
            self._show_current()
        else:
            self.queue.set_current(index)

    def next_study(self) -> None:
        self.go_to(self.queue.current + 1)

    def previous_study(self) -> None:
        self.go_to(self.queue.current - 1)

    def switch_level(self) -> None:
        i = self.levels.index(self.active_level)
        self.set_active_level(self.levels[(i + 1) % len(self.levels)])

    def set_active_level(self, level: str) -> None:
        self.active_level = level
        self._refresh_picks()
        self._update_progress()

    # -- export and feedback -------------------------------------------------------------------
    def ask_export_path(self, level: str) -> Path | None:
        """Where to export (tests replace this)."""
        default = str(self.picks.path.with_name(f"{self.picks.path.stem}_{level}_seed.csv"))
        path, _ = QFileDialog.getSaveFileName(self, f"Export {level} picks", default, "CSV (*.csv)")
        return Path(path) if path else None

    def export_dialog(self, level: str = "L3") -> None:
        path = self.ask_export_path(level)
        if path is None:
            return
        try:
            rows = self.picks.export_seed(path, level=level)
        except InputError as exc:
            self.show_error(str(exc))
            return
        self.statusBar().showMessage(f"Exported {rows} {level} picks to {path}", 8000)

    def show_error(self, message: str) -> None:
        self.last_message = f"Error: {message}"
        self.statusBar().showMessage(self.last_message, 20000)

    def closeEvent(self, ev):
        # every decision is already on disk: only the background work has to stop
        self._load_timer.stop()
        self.loader.close()
        super().closeEvent(ev)

