"""Where the texts drawn over a slice view go: orientation letters at the edge centres, the slice and
window texts in the corners, placed by their measured size so that none overlaps another or runs past
the view, however narrow the view is.

A corner text is given as its forms, longest first ("Axial 130/250", "130/250"); the first form that
fits somewhere is drawn. Its places, in order: its own corner (beside the centre letter of that edge),
then the line just inside that edge (below the top letter, above the bottom one), where the whole width
is free. A text that fits nowhere is cut short with an ellipsis in the widest free place; one that
leaves only the ellipsis is not drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QFontMetrics

MARGIN = 4   # pixels between a text and the view's edge
GAP = 8      # pixels between two texts on one line


@dataclass(frozen=True)
class PlacedText:
    text: str
    rect: QRect   # in the view's own coordinates


def _size(fm: QFontMetrics, text: str) -> tuple[int, int]:
    # the advance plus a pixel each side: bold glyphs may reach past their advance
    return fm.horizontalAdvance(text) + 2, fm.height()


def _free(rect: QRect, placed: dict[str, PlacedText], bounds: QRect) -> bool:
    """Inside the view, and a gap away from every text already placed on its line."""
    wide = rect.adjusted(-GAP // 2, 0, GAP // 2, 0)
    return bounds.contains(rect) and not any(wide.intersects(p.rect) for p in placed.values())


def place_texts(width: int, height: int, fm: QFontMetrics, letters: dict[str, str],
                corners: dict[str, list[str]]) -> dict[str, PlacedText]:
    """Rectangles for ``letters`` (edge -> letter: left, right, top, bottom) and ``corners``
    ('top_left' / 'bottom_left' -> forms of the text). Texts that find no room are left out."""
    bounds = QRect(0, 0, width, height)
    placed: dict[str, PlacedText] = {}
    line = fm.height()
    for edge, letter in letters.items():
        if not letter:
            continue
        w, h = _size(fm, letter)
        x, y = {"left": (MARGIN, (height - h) // 2), "right": (width - w - MARGIN, (height - h) // 2),
                "top": ((width - w) // 2, MARGIN), "bottom": ((width - w) // 2, height - h - MARGIN)}[edge]
        rect = QRect(x, y, w, h)
        if _free(rect, placed, bounds):
            placed[edge] = PlacedText(letter, rect)
    for corner, forms in corners.items():
        forms = [f for f in forms if f]
        if not forms:
            continue
        edge = "top" if corner.startswith("top") else "bottom"
        step = 1 if edge == "top" else -1
        first_y = MARGIN if edge == "top" else height - line - MARGIN
        # the corner itself, then the line inside the edge letter, then one more line inward
        slots = [first_y + step * n * line for n in range(3)]
        chosen = _first_fit(forms, slots, fm, placed, bounds)
        if chosen is None:
            chosen = _elided(forms[-1], slots, fm, placed, bounds)
        if chosen is not None:
            placed[corner] = chosen
    return placed


def _first_fit(forms, slots, fm, placed, bounds) -> PlacedText | None:
    for text in forms:
        w, h = _size(fm, text)
        for y in slots:
            rect = QRect(MARGIN, y, w, h)
            if _free(rect, placed, bounds):
                return PlacedText(text, rect)
    return None


def _room(y: int, h: int, placed, bounds: QRect) -> int:
    """Free width from the left margin along the line at ``y`` up to the first text in the way."""
    right = bounds.width() - MARGIN
    for p in placed.values():
        if p.rect.top() < y + h and y < p.rect.bottom() + 1:
            right = min(right, p.rect.left() - GAP if p.rect.left() > MARGIN else MARGIN)
    return right - MARGIN


def _elided(text, slots, fm, placed, bounds) -> PlacedText | None:
    h = fm.height()
    best = max(slots, key=lambda y: _room(y, h, placed, bounds) if bounds.contains(QRect(0, y, 1, h)) else -1)
    short = fm.elidedText(text, Qt.TextElideMode.ElideRight, max(_room(best, h, placed, bounds) - 2, 0))
    if not short or short == "…":
        return None
    rect = QRect(MARGIN, best, *_size(fm, short))
    return PlacedText(short, rect) if _free(rect, placed, bounds) else None
