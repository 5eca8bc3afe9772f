"""The review queue: the studies in order, the state of each level, and how far the review has come.

:class:`ReviewQueue` is the state (which study is current, which studies failed to load and why);
the picks themselves live in the :class:`PicksFile`, so the queue is always what is on disk.
:class:`QueueTable` shows it: one row per study, one coloured cell per level, and the reason where a
study could not be read.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from app.review.decisions import is_decided, state_of
from ctviewer.workflows.slice_locator.picks import LEVELS, PicksFile

#: What each level state looks like in the queue: (text, background colour).
STATE_LOOK = {
    "none": ("—", (60, 60, 60)),
    "predicted": ("predicted", (150, 115, 20)),
    "accepted": ("accepted", (35, 120, 50)),
    "corrected": ("corrected", (35, 90, 160)),
    "flagged": ("flagged", (150, 40, 140)),
    "not_in_scan": ("not in scan", (95, 95, 95)),
    "not_in_scan?": ("not in scan?", (150, 115, 20)),
    # the network and the vertebra count disagree: never a confident answer, a person must look
    "levels_disagree": ("levels disagree — check", (190, 60, 20)),
    # in view but neither the network nor the count placed it: a person must, never read as "not in scan"
    "not_found": ("in view, not found — check", (175, 75, 25)),
    "from_count": ("from the spine count", (120, 110, 30)),
}


class ReviewQueue(QObject):
    """The ordered studies, the current one, and each study's loading state."""

    current_changed = Signal(int)
    #: a study's row needs redrawing (its picks or its loading state changed)
    study_changed = Signal(str)

    def __init__(self, picks: PicksFile, exam_ids: list[str], paths: dict[str, Path], levels=LEVELS, parent=None):
        super().__init__(parent)
        self.picks = picks
        self.exam_ids = list(exam_ids)
        self.paths = dict(paths)
        self.levels = tuple(levels)
        self.current = 0
        #: exam_id -> "loading 40%", "ready" or the reason it failed
        self.load_state: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self.exam_ids)

    @property
    def exam_id(self) -> str | None:
        return self.exam_ids[self.current] if self.exam_ids else None

    def set_current(self, index: int) -> None:
        index = max(0, min(int(index), len(self.exam_ids) - 1))
        if index != self.current:
            self.current = index
            self.current_changed.emit(index)

    def level_state(self, exam_id: str, level: str) -> str:
        return state_of(self.picks.get(exam_id, level))

    def is_reviewed(self, exam_id: str) -> bool:
        return all(is_decided(self.picks.get(exam_id, level)) for level in self.levels)

    def reviewed_count(self) -> int:
        return sum(self.is_reviewed(e) for e in self.exam_ids)

    def first_unreviewed(self, start: int = 0) -> int | None:
        """Index of the first study from ``start`` on with a level nobody has decided."""
        for i in range(max(start, 0), len(self.exam_ids)):
            if not self.is_reviewed(self.exam_ids[i]):
                return i
        return None

    def progress_text(self) -> str:
        return f"{self.reviewed_count()} of {len(self.exam_ids)} reviewed"

    def set_load_state(self, exam_id: str, text: str, error: bool = False) -> None:
        self.load_state[exam_id] = text
        if error:
            self.errors[exam_id] = text
        else:
            self.errors.pop(exam_id, None)
        self.study_changed.emit(exam_id)


class QueueTable(QTableWidget):
    """The queue as a table: study, one cell per level, and a note (loading, or why it failed).

    It never takes the keyboard focus, so the review keys always reach the window.
    """

    study_clicked = Signal(int)

    def __init__(self, queue: ReviewQueue, parent=None):
        super().__init__(0, 2 + len(queue.levels), parent)
        self.queue = queue
        self.setHorizontalHeaderLabels(["study", *queue.levels, "note"])
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        # the current study is marked by a bold name, not a selection colour that would hide the states
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().setVisible(False)
        header = self.horizontalHeader()
        for col in range(self.columnCount() - 1):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.cellClicked.connect(lambda row, _col: self.study_clicked.emit(row))
        queue.study_changed.connect(self.refresh_study)
        queue.current_changed.connect(self._current_changed)
        self._marked = -1
        self.refresh_all()

    def refresh_all(self) -> None:
        self.setRowCount(len(self.queue.exam_ids))
        for row, exam in enumerate(self.queue.exam_ids):
            self._fill(row, exam)
        self._current_changed(self.queue.current)

    def refresh_study(self, exam_id: str) -> None:
        if exam_id in self.queue.exam_ids:
            self._fill(self.queue.exam_ids.index(exam_id), exam_id)

    def level_text(self, row: int, level: str) -> str:
        return self.item(row, 1 + self.queue.levels.index(level)).text()

    def note_text(self, row: int) -> str:
        return self.item(row, self.columnCount() - 1).text()

    def _fill(self, row: int, exam_id: str) -> None:
        q = self.queue
        current = row == q.current
        name = QTableWidgetItem(("▶ " if current else "") + ("✓ " if q.is_reviewed(exam_id) else "") + exam_id)
        name.setToolTip(str(q.paths.get(exam_id, "no path known")))
        font = name.font()
        font.setBold(current)
        name.setFont(font)
        if exam_id in q.errors:
            name.setForeground(QBrush(QColor(200, 40, 40)))
        self.setItem(row, 0, name)
        for col, level in enumerate(q.levels, start=1):
            state = q.level_state(exam_id, level)
            text, colour = STATE_LOOK.get(state, (state, (60, 60, 60)))
            pick = q.picks.get(exam_id, level)
            if pick is not None and pick.slice_index is not None:
                text += f" {pick.slice_index}"
            cell = QTableWidgetItem(text)
            cell.setBackground(QBrush(QColor(*colour)))
            cell.setForeground(QBrush(QColor(255, 255, 255)))
            self.setItem(row, col, cell)
        note_text = q.errors.get(exam_id) or q.load_state.get(exam_id, "")
        note = QTableWidgetItem("" if note_text == "ready" else note_text)
        note.setToolTip(note_text)
        if exam_id in q.errors:
            note.setForeground(QBrush(QColor(230, 70, 70)))
        self.setItem(row, self.columnCount() - 1, note)

    def _current_changed(self, row: int) -> None:
        previous, self._marked = self._marked, row
        if 0 <= previous < self.rowCount() and previous != row:
            self._fill(previous, self.queue.exam_ids[previous])
        if 0 <= row < self.rowCount():
            self._fill(row, self.queue.exam_ids[row])
            self.scrollToItem(self.item(row, 0))
