"""Predict folder… in the dock: progress with Cancel while the model process works through the photos,
then a one-line summary and the class fractions per photo, read back from the rows predict_folder returns
(the same numbers as its fractions.csv), as a table and a live chart. A single photo's prediction
updates its row. The table and chart are placed by the dock (in its splitter, under the photo list)."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.thin_section.fractions_chart import FractionsChart


def summary(rows: list[dict], out, problems=()) -> str:
    """One line, e.g. "9 photos predicted into OUT; porosity 8.1–15.3 % (mean 11.2 %); 1 photo skipped"."""
    text = f"{len(rows)} photo{'s' * (len(rows) != 1)} predicted into {out}"
    values = [float(r["porosity"]) for r in rows if r.get("porosity") is not None]
    if len(values) > 1:
        text += f"; porosity {min(values):.1f}–{max(values):.1f} % (mean {sum(values) / len(values):.1f} %)"
    elif values:
        text += f"; porosity {values[0]:.1f} %"
    if problems:
        text += f"; {len(problems)} photo{'s' * (len(problems) != 1)} skipped"
    return text


def table_rows(rows: list[dict], table) -> tuple[list[str], list[list[str]]]:
    """Headers and cells: photo, % per class of ``table`` (as fractions.csv names them), porosity %."""
    headers = ["photo"] + [f"{lab.id} {lab.name} %" for lab in table] + ["porosity %"]
    cells = []
    for row in rows:
        fractions = {int(k): float(v) for k, v in (row.get("fractions") or {}).items()}
        cells.append([str(row.get("image", ""))] + [f"{fractions.get(lab.id, 0.0):.2f}" for lab in table]
                     + [f"{float(row.get('porosity', 0.0)):.2f}"])
    return headers, cells


def short_name(name: str) -> str:
    """A column header that fits a narrow dock: "blue-dye epoxy (visual porosity)" -> "blue-dye epoxy",
    "bright quartz grains" -> "bright quartz", on two lines (the full name is the header's tooltip)."""
    short = re.sub(r"\s*\(.*?\)", "", name).strip()
    short = re.sub(r"\s+grains$", "", short) or name
    first, _, rest = short.rpartition(" ")
    return f"{first}\n{rest}" if first and len(short) > 8 else short   # two lines: narrower columns


def _swatch(colour) -> QIcon:
    pixmap = QPixmap(10, 10)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class FolderResults(QWidget):
    def __init__(self, on_cancel, parent=None):
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(on_cancel)
        self.progress_row = QWidget()
        row = QHBoxLayout(self.progress_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar, 1)
        row.addWidget(self.cancel_button)
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 0)
        self.table.setObjectName("fractions_table")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        self.chart = FractionsChart()
        self.rows: dict[str, dict] = {}   # photo name -> its row (predict_folder's keys), in the table's order
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.progress_row, self.summary):
            layout.addWidget(widget)
        self.progress_row.hide()
        self.table.hide()
        self.chart.hide()

    def started(self, what: str) -> None:
        self.bar.setValue(0)
        self.bar.setFormat(f"{what} %p%")
        self.cancel_button.setEnabled(True)
        self.progress_row.show()
        self.summary.setText("")

    def progress(self, fraction: float, message: str) -> None:
        self.bar.setValue(int(fraction * 1000))
        self.bar.setFormat(f"{message} %p%" if message else "%p%")

    def finished(self) -> None:
        self.progress_row.hide()

    def say(self, text: str) -> None:
        self.summary.setText(text)

    def show_rows(self, rows: list[dict], out, problems, table) -> None:
        """The summary line (and one line per skipped photo), then a row of fractions per photo."""
        self.rows = {str(row.get("image", "")): row for row in rows}
        self._redraw(table)
        self.summary.setText("\n".join([summary(rows, out, problems), *map(str, problems)]))

    def show_photo(self, name: str, fractions: dict[int, float], porosity: float, table) -> None:
        """One photo's fractions (a new prediction): its row is replaced, or added at the end."""
        self.rows[name] = {"image": name, "fractions": dict(fractions), "porosity": porosity}
        self._redraw(table)

    def clear(self) -> None:
        """Another project: no fractions of the last one stay in sight."""
        self.rows = {}
        self.summary.setText("")
        self.table.hide()
        self.chart.hide()

    def _redraw(self, table) -> None:
        headers, cells = table_rows(list(self.rows.values()), table)
        # porosity is the blue-epoxy column again: fractions.csv keeps it, the narrow dock does not
        headers, cells = headers[:-1], [values[:-1] for values in cells]
        self.table.setColumnCount(len(headers))
        labels = list(table)
        for c, full in enumerate(headers):
            lab = labels[c - 1] if 0 < c <= len(labels) else None
            head = QTableWidgetItem(short_name(lab.name) if lab else full.removesuffix(" %"))
            head.setToolTip(f"{full} of the labelled pixels" if lab else "the photo")
            if lab is not None:
                head.setIcon(_swatch(lab.colour))
            self.table.setHorizontalHeaderItem(c, head)
        self.table.setRowCount(len(cells))
        for r, values in enumerate(cells):
            for c, text in enumerate(values):
                cell = QTableWidgetItem(f"{float(text):.1f}" if c else text)   # 0.1 % is what a bar shows
                cell.setToolTip(f"{text} %" if c else text)
                if c:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, cell)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(24)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if headers:   # the photo names take what is left, elided: the table never needs scrolling sideways
            header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        fractions = [{int(k): float(v) for k, v in (row.get("fractions") or {}).items()} for row in self.rows.values()]
        self.chart.show_fractions(list(self.rows), fractions, table)
        self.table.setVisible(bool(cells))
        self.chart.setVisible(bool(cells))
