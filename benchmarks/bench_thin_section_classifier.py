"""Live pixel classifier: the update after a scribble on a 600x500 photo (issue 6: under 1 s).

The update is what the user waits for after each stroke: fitting the forest on the scribbles and
predicting every pixel (``PixelClassifier.fit`` + ``predict``). The features are computed once
per photo, when the classifier starts, and are timed apart. Each time is printed with references
measured in the same run, so the ratios travel across machines: the feature computation, and the
gray-level bins of the same photo (the labelling a user gets without scribbling).

Two scribble loads: "a few strokes" (6 small disks per class, ~1 000 pixels in all) and "heavy"
(20 big disks per class, ~26 000 pixels, which the classifier subsamples to ``max_per_class``).
The rows after the defaults are the alternatives the defaults were chosen against.

    .venv/bin/python benchmarks/bench_thin_section_classifier.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

import numpy as np  # noqa: E402

from ctviewer.imaging.bins import PUBLISHED_THRESHOLDS, gray_level_bins, luminance  # noqa: E402
from ctviewer.workflows.thin_section.classifier import PixelClassifier  # noqa: E402

PHOTO = REPO.parent / "shared" / "data" / "thin_sections" / "images" / "2.png"   # 685 x 552
SHAPE = (500, 600)
TARGET_S = 1.0


def load_photo() -> tuple[np.ndarray, np.ndarray, str]:
    """The real photo cropped to 600x500 with its labels, or a synthetic one where it is absent."""
    if PHOTO.is_file():
        from PIL import Image

        rgb = np.asarray(Image.open(PHOTO))[: SHAPE[0], : SHAPE[1], :3]
        truth = np.asarray(Image.open(PHOTO.parent.parent / "labels" / PHOTO.name))[: SHAPE[0], : SHAPE[1]]
        return np.ascontiguousarray(rgb), truth, f"{PHOTO.name} cropped to 600x500"
    from scipy.ndimage import gaussian_filter

    from ctviewer.imaging.bins import THIN_SECTION_CLASSES

    rng = np.random.default_rng(0)
    field = gaussian_filter(rng.random(SHAPE), 6)
    field = (field - field.min()) / np.ptp(field)
    truth = gray_level_bins(field, PUBLISHED_THRESHOLDS, 0)
    colours = np.array([(0, 0, 0)] + [c for _, _, c in THIN_SECTION_CLASSES], float)
    rgb = np.clip(colours[truth] + rng.normal(0, 10, SHAPE + (3,)), 0, 255).astype(np.uint8)
    return rgb, truth, "synthetic grains 600x500 (real photo absent)"


def scribble(truth: np.ndarray, disks: int, radius: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: truth.shape[0], : truth.shape[1]]
    out = np.zeros_like(truth)
    for c in np.unique(truth):
        ys, xs = np.nonzero(truth == c)
        for k in rng.choice(ys.size, min(disks, ys.size), replace=False):
            out[((yy - ys[k]) ** 2 + (xx - xs[k]) ** 2 <= radius**2) & (truth == c)] = c
    return out


def median_of(fn, repeats: int = 3) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), value


def update(clf: PixelClassifier, scribbles: np.ndarray) -> tuple[float, float, float]:
    """Median fit and predict times, and the predicted class ids."""
    fit, _ = median_of(lambda: clf.fit(scribbles))
    predict, ids = median_of(clf.predict)
    return fit, predict, ids


def main() -> None:
    rgb, truth, what = load_photo()
    out = Report(__file__, "Live pixel classifier")
    out(f"photo: {what}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}")
    bins_s, _ = median_of(lambda: gray_level_bins(luminance(rgb), PUBLISHED_THRESHOLDS, 1.0))
    loads = {"a few strokes": scribble(truth, 6, 4), "heavy": scribble(truth, 20, 15)}
    configs = [("defaults: 32 trees, 1000 px/class", {}),
               ("64 trees", {"n_estimators": 64}),
               ("1500 px/class, trees on all of them", {"max_per_class": 1500, "max_tree_samples": 10**9})]
    clf = PixelClassifier()
    features_s, _ = median_of(lambda: clf.set_image(rgb), repeats=2)
    out(f"reference: gray-level bins of the photo {bins_s * 1000:.0f} ms; "
        f"features once per photo ({clf.features.shape[-1]} per pixel) {features_s:.2f} s")
    out(f"{'scribbles':<14} {'classifier':<36} {'pixels':>7} {'fit':>7} {'predict':>8} {'update':>7} "
        f"{'vs features':>11} {'vs bins':>8} {'agree':>6}")
    verdict = None
    for label, kwargs in configs:
        variant = PixelClassifier(**kwargs)
        # the same photo: features are not part of the update
        variant.features, variant.shape, variant.factor = clf.features, clf.shape, clf.factor
        for load, scribbles in loads.items():
            fit, predict, ids = update(variant, scribbles)
            total = fit + predict
            out(f"{load:<14} {label:<36} {np.count_nonzero(scribbles):>7} {fit:>6.2f}s {predict:>7.2f}s "
                f"{total:>6.2f}s {total / features_s:>10.2f}x {total / bins_s:>7.0f}x "
                f"{np.mean(ids == truth):>6.3f}")
            if not kwargs:
                verdict = max(verdict or 0.0, total)
    out.verdict(f"update after a scribble under {TARGET_S:g} s with the defaults", verdict < TARGET_S,
                f"slowest {verdict:.2f} s")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()
