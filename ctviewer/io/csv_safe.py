"""CSV files a spreadsheet cannot run, read back to the text that was written.

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a
formula (and tab or carriage return can hide one): an exam id ``=HYPERLINK("http://x","y")`` in a
picks CSV becomes a live link on a clinician's machine. Following the OWASP rule for CSV injection,
every text cell starting with one of those characters is written with a single quote in front, which
spreadsheets show as plain text, and :func:`read_cell` takes the quote off again, so the program
reads its own CSVs back to the original text.

Numbers are left alone, negative ones included (``z_mm`` -629.5 must stay a number a spreadsheet can
sum): a cell that is a plain decimal number cannot be a formula, which OWASP allows. Only numbers as
this program writes them count (``-629.5``, ``-1e-05``); ``+1`` or ``-1+cmd|...`` are text and quoted.

Round trip: a text that already starts with quotes before a formula character (``'=x``) gets one
more, and reading removes exactly one, so every text comes back unchanged.

Every CSV the program writes goes through :func:`write_csv` / :func:`csv_text`, and every CSV it
reads back through :func:`read_text` and :func:`reader`.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from pathlib import Path
from typing import Iterable, Iterator

from ctviewer.io.atomic import atomic_write_text

#: Cell starts a spreadsheet may take for a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: What spreadsheets show as text: the quote itself is not displayed.
QUOTE = "'"
#: A plain decimal number as Python prints one: optional minus, digits, decimals, exponent.
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: csv.Error, for readers that report a broken file.
Error = csv.Error


def _needs_quote(text: str) -> bool:
    return text.lstrip(QUOTE).startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text)


def safe_cell(value):
    """``value`` as it goes into a CSV: text that a spreadsheet could run gets a leading quote;
    numbers (int, float, or text that is a plain number) and other text are unchanged."""
    if isinstance(value, str) and _needs_quote(value):
        return QUOTE + value
    return value


def read_cell(text: str) -> str:
    """The original text of a cell :func:`safe_cell` wrote (one neutralising quote taken off)."""
    if text.startswith(QUOTE) and text.lstrip(QUOTE).startswith(FORMULA_STARTS):
        return text[1:]
    return text


def csv_text(rows: Iterable[Iterable], header: Iterable | None = None) -> str:
    """The CSV text of ``header`` and ``rows`` with every cell made safe (``\\n`` line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # csv quotes a cell holding the line terminator but not a lone carriage return, which every
    # reader takes for a line end; such a (rare) row is written with every cell quoted.
    quoted = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for row in itertools.chain([] if header is None else [header], rows):
        cells = [safe_cell(cell) for cell in row]
        (quoted if any(isinstance(c, str) and "\r" in c for c in cells) else writer).writerow(cells)
    return out.getvalue()


def write_csv(path: str | Path, rows: Iterable[Iterable], header: Iterable | None = None) -> Path:
    """Write a CSV atomically (the old file or the complete new one, never half)."""
    atomic_write_text(path, csv_text(rows, header))
    return Path(path)


def read_text(path: str | Path) -> str:
    """A CSV file's text as written: UTF-8 (an Excel BOM dropped), line ends untranslated, so a
    carriage return inside a quoted cell stays one (``Path.read_text`` would make it a newline)."""
    return Path(path).read_bytes().decode("utf-8-sig")


class reader:
    """``csv.reader`` over ``text`` whose cells come back as written (:func:`read_cell`);
    ``line_num`` as csv.reader's, for messages naming the line.

    ``strip``: take spaces round a cell off first (a hand-edited file), before the quote is
    looked at, so a text that starts with a tab keeps it.
    """

    def __init__(self, text: str, strip: bool = False):
        self._rows = csv.reader(io.StringIO(text, newline=""))
        self._strip = strip

    @property
    def line_num(self) -> int:
        return self._rows.line_num

    def __iter__(self) -> Iterator[list[str]]:
        return self

    def __next__(self) -> list[str]:
        row = next(self._rows)
        return [read_cell(cell.strip() if self._strip else cell) for cell in row]
