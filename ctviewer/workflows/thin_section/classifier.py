"""The live pixel classifier: a few scribbles per class, a random forest labels the whole photo.

In the spirit of ilastik's pixel classification: every pixel of the photo gets a feature vector
once (:func:`pixel_features`: smoothed intensity, edges and texture at several scales of the
luminance and of each colour channel, plus hue and saturation so blue-dye epoxy stands out from
beige grains of the same brightness); after each scribble a random forest is fitted on the
scribbled pixels only and predicts every pixel.

The update after a scribble must feel live (under a second on a 600x500 photo on a 2-core CPU,
``benchmarks/bench_thin_section_classifier.py``), so:

* a class scribbled heavily is subsampled to ``max_per_class`` pixels, and each tree is grown on
  at most ``max_tree_samples`` of them (bootstrap): fitting time grows with the samples (10 000
  pixels took 1-2 s under load), and accuracy hardly does (1 000 per class reproduced the
  published labels of a photo at 98.6-98.9 %);
* 32 trees: 64 doubled fit and predict time for +0.1-1 % agreement;
* prediction stays at full resolution (predicting every second pixel and interpolating the
  probabilities lost 6 % agreement at class borders) and goes in row chunks, which keeps each
  tree's work in cache and lets a newer scribble cancel it;
* except for big photos: 67 float32 features per pixel are 1.6 GB for a 2000x3000 photo, so photos
  over ``max_pixels`` (1 M) are classified on a grid shrunk by a whole factor (anti-aliased), each
  scribbled pixel training on the cell it falls in, and the classes are scaled back up.
"""

from __future__ import annotations

import numpy as np

from ctviewer.errors import InputError
from ctviewer.progress import CancelToken, Progress, no_progress

DEFAULT_SIGMAS = (1, 2, 4, 8)
#: Largest photo classified at full resolution (~270 MB of features); bigger ones on a shrunk grid.
MAX_PIXELS = 1_000_000
#: Pixels per prediction chunk: ~30 000 rows of features fit in cache for all trees (measured
#: quicker than one call on the whole photo, and than much smaller chunks).
_CHUNK_PIXELS = 30_000


def _as_rgb(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4) or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise InputError(f"the live classifier needs a colour photo [y, x, 3], got shape {rgb.shape}")
    return rgb[..., :3]


def pixel_features(rgb, sigmas=DEFAULT_SIGMAS, progress: Progress | None = None,
                   cancel: CancelToken | None = None) -> np.ndarray:
    """``[y, x, F]`` float32 features of every pixel of an RGB photo (uint8, uint16 or float 0..1).

    Per sigma, for the luminance and for R, G and B: Gaussian-smoothed intensity, edges (Sobel of
    the smoothed image) and texture (the two Hessian eigenvalues), 16 per sigma; then cos and sin of
    the hue (an angle: red at 0 and at 1 are the same colour) and the saturation. 67 features with
    the default sigmas. ``progress`` and ``cancel`` are reported and checked between sigmas.
    """
    from skimage.color import rgb2gray, rgb2hsv
    from skimage.feature import multiscale_basic_features
    from skimage.util import img_as_float32

    colour = img_as_float32(_as_rgb(rgb))
    sigmas = tuple(float(s) for s in sigmas)
    if not sigmas or any(s <= 0 for s in sigmas):
        raise InputError(f"feature scales (sigmas) must be positive pixel sizes, got {sigmas}")
    channels = np.concatenate([rgb2gray(colour)[..., None], colour], axis=-1)
    progress = progress or no_progress
    parts = []
    for n, s in enumerate(sigmas):  # one call per sigma: any list of scales, not only powers of two
        if cancel is not None:
            cancel.raise_if_cancelled()
        parts.append(multiscale_basic_features(channels, sigma_min=s, sigma_max=s, num_sigma=1, channel_axis=-1))
        progress((n + 1) / (len(sigmas) + 1), "computing pixel features")
    hsv = rgb2hsv(colour)
    hue = hsv[..., 0] * (2 * np.pi)
    parts.append(np.stack([np.cos(hue), np.sin(hue), hsv[..., 1]], axis=-1))
    features = np.ascontiguousarray(np.concatenate(parts, axis=-1), dtype=np.float32)
    progress(1.0, "pixel features ready")
    return features


class PixelClassifier:
    """Fit on scribbles, predict the photo; features are computed once per photo by :meth:`set_image`.

    Not for sharing between threads: the GUI runs one update at a time on one instance.
    """

    def __init__(self, n_estimators: int = 32, sigmas=DEFAULT_SIGMAS, seed: int = 0,
                 max_per_class: int = 1000, max_tree_samples: int = 2500, max_pixels: int = MAX_PIXELS):
        self.n_estimators = int(n_estimators)
        self.sigmas = tuple(sigmas)
        self.seed = int(seed)
        self.max_per_class = int(max_per_class)
        self.max_tree_samples = int(max_tree_samples)
        self.max_pixels = int(max_pixels)
        self.classes: list[int] = []
        self.features: np.ndarray | None = None
        self.shape: tuple[int, int] | None = None   # the photo's size (the features' grid may be shrunk)
        self.factor = 1                              # photo pixels per feature cell along each axis
        self._forest = None

    def set_image(self, rgb, progress: Progress | None = None, cancel: CancelToken | None = None) -> None:
        """Compute the photo's features (seconds on a big photo); forgets any fitted forest."""
        rgb = _as_rgb(rgb)
        h, w = rgb.shape[:2]
        factor = max(1, int(np.ceil(np.sqrt(h * w / self.max_pixels))))
        if factor > 1:
            from skimage.transform import resize
            from skimage.util import img_as_float32

            small = (-(-h // factor), -(-w // factor))
            rgb = resize(img_as_float32(rgb), small, order=1, anti_aliasing=True).astype(np.float32)
        features = pixel_features(rgb, self.sigmas, progress=progress, cancel=cancel)
        if cancel is not None:
            cancel.raise_if_cancelled()
        self.features, self._forest, self.classes = features, None, []
        self.shape, self.factor = (h, w), factor
        (progress or no_progress)(1.0, "pixel features ready")

    def training_pixels(self, scribbles) -> np.ndarray:
        """Flat indices (into the photo) of the scribbled pixels used for fitting: at most
        ``max_per_class`` per class."""
        scribbles = self._check(scribbles)
        flat = scribbles.reshape(-1)
        classes = [int(c) for c in np.unique(flat) if c != 0]
        if len(classes) < 2:
            named = f"only class {classes[0]} is" if classes else "nothing is"
            raise InputError(f"scribble at least two classes for the classifier to tell apart ({named} scribbled)")
        rng = np.random.default_rng(self.seed)
        chosen = []
        for c in classes:
            index = np.flatnonzero(flat == c)
            if index.size > self.max_per_class:
                index = np.sort(rng.choice(index, self.max_per_class, replace=False))
            chosen.append(index)
        return np.concatenate(chosen)

    def fit(self, scribbles) -> "PixelClassifier":
        """Fit on the scribbled pixels (``[y, x]`` class ids, 0 = not scribbled)."""
        from sklearn.ensemble import RandomForestClassifier

        index = self.training_pixels(scribbles)
        flat = np.asarray(scribbles).reshape(-1)
        y, x = np.divmod(index, self.shape[1])
        cells = (y // self.factor) * self.features.shape[1] + x // self.factor
        X = self.features.reshape(-1, self.features.shape[-1])[cells]
        forest = RandomForestClassifier(n_estimators=self.n_estimators, n_jobs=-1, random_state=self.seed,
                                        max_samples=min(index.size, self.max_tree_samples))
        forest.fit(X, flat[index])
        self._forest = forest
        self.classes = [int(c) for c in forest.classes_]
        return self

    def predict(self, progress: Progress | None = None, cancel: CancelToken | None = None) -> np.ndarray:
        """``[y, x]`` class ids of the whole photo (uint8), in row chunks; cancel is checked between them."""
        if self._forest is None:
            raise RuntimeError("fit the classifier on scribbles before predicting")
        progress = progress or no_progress
        h, w, n = self.features.shape
        X = self.features.reshape(-1, n)
        lookup = np.asarray(self.classes, dtype=np.uint8 if max(self.classes) < 256 else np.uint16)
        out = np.empty(h * w, dtype=lookup.dtype)
        rows = max(1, _CHUNK_PIXELS // w)
        for start in range(0, h * w, rows * w):
            if cancel is not None:
                cancel.raise_if_cancelled()
            stop = min(start + rows * w, h * w)
            out[start:stop] = lookup[self._forest.predict_proba(X[start:stop]).argmax(axis=1)]
            progress(stop / (h * w), "classifying pixels")
        out = out.reshape(h, w)
        if self.factor > 1:
            f = self.factor
            out = np.repeat(np.repeat(out, f, axis=0), f, axis=1)[:self.shape[0], :self.shape[1]]
        return np.ascontiguousarray(out)

    def _check(self, scribbles) -> np.ndarray:
        if self.features is None:
            raise RuntimeError("set the photo (set_image) before fitting")
        scribbles = np.asarray(scribbles)
        if scribbles.ndim == 3 and scribbles.shape[0] == 1:  # a photo study's label layer is [1, y, x]
            scribbles = scribbles[0]
        if scribbles.shape != self.shape:
            raise InputError(f"the scribbles ({'x'.join(map(str, scribbles.shape))}) are not the size of the "
                             f"photo ({'x'.join(map(str, self.shape))})")
        return scribbles
