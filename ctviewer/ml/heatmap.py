"""Reading a per-row heatmap (the locator's output) without Keras: its best row and confidence.

Shared by the locator's own peaks and the training task (ctviewer.ml.locator, which loads Keras) and
by decoding picks (ctviewer.workflows.slice_locator.locate, which must not).
"""

from __future__ import annotations

import numpy as np

#: Rows either side of the maximum whose centroid refines the pick to a fraction of a row.
PEAK_HALF_WINDOW = 3


def best_row(heatmap: np.ndarray) -> tuple[float, float]:
    """(row, confidence): the maximum of a heatmap, its row refined by the centroid around it.

    The refinement matters because a row is 1 mm but a pick is compared with slices a few mm apart.
    """
    h = np.asarray(heatmap, dtype=np.float64)
    if h.size == 0:
        return float("nan"), 0.0
    best = int(np.argmax(h))
    lo, hi = max(best - PEAK_HALF_WINDOW, 0), min(best + PEAK_HALF_WINDOW + 1, h.size)
    w = h[lo:hi]
    row = float(np.sum(w * np.arange(lo, hi)) / w.sum()) if w.sum() > 0 else float(best)
    return row, float(h[best])
