"""Where the locator's training data comes from: synthetic scans, the thesis's .npz, reviewed studies.

Every source ends as a list of :class:`ScanSample`: one scan's frontal and sagittal projections at
1 mm with the row of each level's centre (NaN: not in the scan) and whether that is known.

* **Synthetic**: torso CTs from ``ctviewer.synth`` with a mix of fields of view (chest, abdomen, both,
  and windows of any height anywhere along the trunk). Only the projections and the level rows are
  kept, one small ``.npz`` per seed in a cache folder, so a second training does not render again.
  Scans are rendered in worker processes (the renderer is single-threaded numpy).
* **Thesis .npz**: the seed thesis kept its MIPs in one ``.npz``; see :func:`read_thesis_npz` for the
  layout assumed.
* **Reviewed studies**: a picks CSV whose rows a person accepted or corrected (``PicksFile``), with
  the study paths from its sidecar; each study is read and projected once and cached.
* **Labelled CT**: a CT with a label map (TotalSegmentator ids, :mod:`ctviewer.data.vertebra_ids`) gives
  the truth as the centre of a vertebra's label; used to measure the model on real scans.

This module stays free of Keras so that worker processes start fast.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ctviewer.data.vertebra_ids import VERTEBRA_IDS
from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_path
from ctviewer.progress import CancelToken, Progress, no_progress
from ctviewer.workflows.slice_locator.projections import PROJECTION_SPACING_MM

#: Bump when what is stored per scan changes (with the generator's version, names the cache folder).
DATA_VERSION = 2
#: Statuses of a picks CSV row whose slice a person confirmed.
CONFIRMED = ("accepted", "corrected")


@dataclass
class ScanSample:
    """One scan's projections and where its levels are (rows of the 1 mm projections)."""

    id: str
    study: str                       # samples of one study never straddle training and validation
    frontal: np.ndarray              # float32 [rows, cols] 0..1
    sagittal: np.ndarray             # float32 [rows, cols2] 0..1
    centre_cols: tuple[float, float]
    level_rows: dict[str, float]     # level -> fractional row; NaN = not in scan
    known: dict[str, bool] = field(default_factory=dict)   # False: nobody said (masked in the loss)
    slice_spacing_mm: float = 1.0    # of the scan the projections came from (errors in slices)
    source: str = ""
    top_z_mm: float = 0.0            # patient z of row 0
    slice_z_mm: np.ndarray | None = None   # patient z of each slice (slice index -> z)

    @property
    def rows(self) -> int:
        return int(self.frontal.shape[0])

    def rows_for(self, levels) -> np.ndarray:
        return np.array([self.level_rows.get(lv, np.nan) for lv in levels], dtype=np.float64)

    def known_for(self, levels) -> np.ndarray:
        return np.array([self.known.get(lv, True) for lv in levels], dtype=bool)


def from_projections(projections, level_z: dict, *, id: str, study: str, source: str,
                     known: dict | None = None) -> ScanSample:
    """A sample from a ``Projections`` and level z (mm, None = not in scan)."""
    rows = {lv: (np.nan if z is None else projections.z_to_row(float(z))) for lv, z in level_z.items()}
    return ScanSample(id, study, projections.frontal, projections.sagittal,
                      tuple(float(c) for c in projections.body_centre_col), rows, dict(known or {}),
                      float(projections.slice_spacing_mm), source, float(projections.top_z_mm),
                      np.asarray(projections.slice_z_mm, dtype=np.float64))


# -- the cache: one .npz per scan ----------------------------------------------------------------

def save_sample(sample: ScanSample, path: Path) -> None:
    levels = sorted(sample.level_rows)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, frontal=sample.frontal.astype(np.float16), sagittal=sample.sagittal.astype(np.float16),
                centre_cols=np.asarray(sample.centre_cols, np.float64), levels=np.array(levels, dtype=str),
                level_rows=np.array([sample.level_rows[lv] for lv in levels], np.float64),
                known=np.array([sample.known.get(lv, True) for lv in levels], bool),
                slice_spacing_mm=np.float64(sample.slice_spacing_mm), top_z_mm=np.float64(sample.top_z_mm),
                slice_z_mm=np.asarray(sample.slice_z_mm if sample.slice_z_mm is not None else [], np.float64),
                id=np.array(sample.id), study=np.array(sample.study), source=np.array(sample.source))


def load_sample(path: Path) -> ScanSample:
    try:
        with np.load(path, allow_pickle=False) as d:
            levels = [str(s) for s in d["levels"]]
            return ScanSample(str(d["id"]), str(d["study"]), d["frontal"].astype(np.float32),
                              d["sagittal"].astype(np.float32), tuple(float(c) for c in d["centre_cols"]),
                              dict(zip(levels, (float(r) for r in d["level_rows"]))),
                              dict(zip(levels, (bool(k) for k in d["known"]))),
                              float(d["slice_spacing_mm"]), str(d["source"]), float(d["top_z_mm"]),
                              d["slice_z_mm"] if d["slice_z_mm"].size else None)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"not a locator sample file ({exc})", path) from None


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("ctviewer")) / "locator-data"


# -- synthetic scans ------------------------------------------------------------------------------

#: Share of each field of view among generated scans; "window" = a window of random height anywhere.
FIELD_OF_VIEW_MIX = {"both": 0.3, "abdomen": 0.3, "chest": 0.2, "window": 0.2}


def synthetic_kind(seed: int) -> str:
    """The field of view of synthetic scan ``seed``: a key of FIELD_OF_VIEW_MIX."""
    rng = np.random.default_rng([int(seed), 0x10CA7])
    kinds = list(FIELD_OF_VIEW_MIX)
    return kinds[int(rng.choice(len(kinds), p=list(FIELD_OF_VIEW_MIX.values())))]


#: Share of scans rendered on a 512 matrix (0.7-0.8 mm pixels) instead of the generator's 256 (1.35-1.65 mm).
#: Real CT is 512 x 512: on 1.5 mm pixels the thin cortex of ribs and spine blurs to about half the
#: brightness a real scan shows in the locator's projections (models/README.md, issue 15).
FINE_MATRIX_SHARE = 0.5


def synthetic_params(seed: int):
    """The TorsoParams of synthetic scan ``seed`` (its field of view drawn from FIELD_OF_VIEW_MIX)."""
    import dataclasses

    from ctviewer.synth.params import TorsoParams

    rng = np.random.default_rng([int(seed), 0x10CA7])
    kinds = list(FIELD_OF_VIEW_MIX)
    kind = kinds[int(rng.choice(len(kinds), p=list(FIELD_OF_VIEW_MIX.values())))]  # as synthetic_kind
    if kind == "window":
        # Generator frame: 0 = top of S1; L3 lies ~110 mm above it, T12 ~210 mm, T1 ~480 mm.
        height = rng.uniform(100.0, 450.0)
        centre = rng.uniform(-60.0, 420.0)
        params = TorsoParams.random(seed, fov_mm=(centre - height / 2, centre + height / 2))
    else:
        params = TorsoParams.random(seed, field_of_view=kind)
    fine = np.random.default_rng([int(seed), 0x512]).random() < FINE_MATRIX_SHARE
    if fine:  # the same field of view on twice the matrix
        rows, cols = params.matrix
        params = dataclasses.replace(params, matrix=(2 * rows, 2 * cols), pixel_spacing=params.pixel_spacing / 2)
    return params


def synthetic_folder(cache_dir: Path) -> Path:
    from ctviewer.synth.demo import GENERATOR_VERSION

    return Path(cache_dir) / f"synthetic-g{GENERATOR_VERSION}-d{DATA_VERSION}"


def make_synthetic_sample(seed: int, levels=("L3", "T12")) -> ScanSample:
    """Render synthetic scan ``seed`` and project it (1–3 s)."""
    from ctviewer.synth.torso import make_torso
    from ctviewer.workflows.slice_locator.projections import make_projections

    torso = make_torso(synthetic_params(seed))
    projections = make_projections(torso.image)
    z = {lv: (torso.levels[lv].z_mm if lv in torso.levels else None) for lv in levels}
    return from_projections(projections, z, id=f"synthetic-{seed}", study=f"synthetic-{seed}", source="synthetic")


def _render_to(seed: int, path: str, levels: tuple) -> str:
    save_sample(make_synthetic_sample(seed, levels), Path(path))
    return path


def synthetic_samples(seeds, cache_dir: Path, levels=("L3", "T12"), workers: int | None = None,
                      progress: Progress | None = None, cancel: CancelToken | None = None) -> list[ScanSample]:
    """The samples of these seeds, rendering (in ``workers`` processes) those not cached yet."""
    progress = progress or no_progress
    folder = synthetic_folder(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {int(s): folder / f"seed{int(s):07d}.npz" for s in seeds}
    missing = [s for s, p in paths.items() if not p.exists()]
    total = len(paths)
    if missing:
        workers = workers or min(len(missing), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                 else (os.cpu_count() or 1))
        done = total - len(missing)
        # spawn, not fork: the parent may already hold TensorFlow's threads, which fork cannot copy.
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=get_context("spawn")) as pool:
            pending = {pool.submit(_render_to, s, str(paths[s]), tuple(levels)) for s in missing}
            try:
                while pending:
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()
                        done += 1
                    progress(0.9 * done / total, f"rendering synthetic scans ({done}/{total})")
                    if cancel is not None:
                        cancel.raise_if_cancelled()
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
    out = []
    for i, path in enumerate(paths.values()):
        out.append(load_sample(path))
        if i % 32 == 0:
            progress(0.9 + 0.1 * i / total, "reading cached synthetic scans")
            if cancel is not None:
                cancel.raise_if_cancelled()
    return out


# -- the thesis's .npz ------------------------------------------------------------------------------

#: Accepted key names per field. The thesis's own key names are not available here (its data lives on
#: a Google Drive the project cannot reach), so these are the plausible spellings; the first present wins.
THESIS_KEYS = {
    "frontal": ("images_f", "frontal", "mips_f", "images_frontal", "mip_frontal", "x_f"),
    "sagittal": ("images_s", "sagittal", "mips_s", "images_sagittal", "mip_sagittal", "x_s"),
    "ids": ("ids", "exam_ids", "names", "id"),
    "spacings": ("spacings", "spacing", "pixel_spacings"),
    "thicknesses": ("thicknesses", "slice_thicknesses", "thickness"),
    "L3": ("l3", "L3", "l3_mm", "y_l3", "l3s"),
    "T12": ("t12", "T12", "t12_mm", "y_t12", "t12s"),
}


def _thesis_field(data, name: str, path: Path, required: bool = True):
    for key in THESIS_KEYS[name]:
        if key in data.files:
            return data[key]
    if required:
        raise InputError(f"no {name} array in the thesis .npz (looked for {', '.join(THESIS_KEYS[name])}; "
                         f"found {', '.join(data.files)})", path)
    return None


def _unit_image(image: np.ndarray) -> np.ndarray:
    """MIP values to 0..1: already 0..1, 8-bit (0..255), or HU (windowed 100..1500 like ours)."""
    image = np.asarray(image, dtype=np.float32)
    top = float(image.max()) if image.size else 0.0
    if top > 255.0 or image.min() < 0:
        return np.clip((image - 100.0) / 1400.0, 0, 1)
    if top > 1.5:
        return image / 255.0
    return np.clip(image, 0, 1)


def image_centre_col(image: np.ndarray, floor: float = 0.05) -> float:
    """Middle of the columns that show anything (the body) — for images without a body mask."""
    cols = np.flatnonzero((image > floor).any(axis=0))
    return float((cols[0] + cols[-1]) / 2) if cols.size else image.shape[1] / 2


def read_thesis_npz(path: str | Path, levels=("L3", "T12"), allow_pickle: bool = False) -> list[ScanSample]:
    """Samples from the thesis's ``.npz``: frontal and sagittal MIPs, ids, spacings, thicknesses, levels.

    Layout assumed (key spellings in :data:`THESIS_KEYS`): ``images_f`` and ``images_s`` hold one MIP per
    scan (a 3-D array, or an object array of 2-D arrays of different heights, which needs
    ``allow_pickle``: only for files you trust, pickles can run code); ``ids`` the exam ids;
    ``spacings`` the mm per MIP pixel (default 1); ``thicknesses`` the slice thickness (mm, used to
    express errors in slices); ``l3`` and ``t12`` each level's centre in mm from the top row, a
    negative or NaN value meaning the level is not in the scan.
    """
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable .npz file ({exc})", path) from None
    try:
        with data:
            frontal = _thesis_field(data, "frontal", path)
            sagittal = _thesis_field(data, "sagittal", path)
            n = len(frontal)
            ids = _thesis_field(data, "ids", path, required=False)
            spacings = _thesis_field(data, "spacings", path, required=False)
            thick = _thesis_field(data, "thicknesses", path, required=False)
            level_mm = {lv: _thesis_field(data, lv, path, required=False) for lv in levels}
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise InputError("the MIPs are stored as Python objects (pickles); load it only if you trust the "
                             "file, with allow_pickle", path) from None
        raise InputError(f"cannot read the thesis .npz ({exc})", path) from None
    if len(sagittal) != n or any(v is not None and len(v) != n for v in (ids, *level_mm.values())):
        raise InputError("the arrays of the thesis .npz have different lengths (one entry per scan expected)", path)
    if all(v is None for v in level_mm.values()):
        raise InputError(f"no level positions in the thesis .npz (looked for {THESIS_KEYS['L3'] + THESIS_KEYS['T12']})",
                         path)
    out = []
    for i in range(n):
        spacing = float(np.ravel(spacings)[i] if spacings is not None and np.size(spacings) > 1
                        else (np.ravel(spacings)[0] if spacings is not None else 1.0))
        f = _to_1mm(_unit_image(frontal[i]), spacing)
        s = _to_1mm(_unit_image(sagittal[i]), spacing)
        rows = {}
        for lv, values in level_mm.items():
            mm = np.nan if values is None else float(values[i])
            rows[lv] = mm if np.isfinite(mm) and mm >= 0 else np.nan
        exam = str(ids[i]) if ids is not None else f"{path.stem}-{i}"
        thickness = float(np.ravel(thick)[i]) if thick is not None and np.size(thick) > 1 else (
            float(np.ravel(thick)[0]) if thick is not None else 1.0)
        out.append(ScanSample(exam, exam, f, s, (image_centre_col(f), image_centre_col(s)), rows,
                              {lv: level_mm[lv] is not None for lv in levels}, thickness, "thesis"))
    return out


def _to_1mm(image: np.ndarray, spacing: float) -> np.ndarray:
    if abs(spacing - 1.0) < 1e-3:
        return image
    from scipy import ndimage

    return ndimage.zoom(image, spacing, order=1).astype(np.float32)


# -- studies a person reviewed ---------------------------------------------------------------------

def _study_projections(study_path: Path, cache_dir: Path | None, cancel=None) -> ScanSample:
    """The study's projections as a sample without levels, cached by path, size and modification time."""
    from ctviewer.io.registry import read_volume
    from ctviewer.workflows.slice_locator.projections import make_projections

    stat = study_path.stat()
    key = hashlib.sha1(f"{study_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:20]
    cached = Path(cache_dir) / "reviewed" / f"{key}.npz" if cache_dir is not None else None
    if cached is not None and cached.exists():
        return load_sample(cached)
    projections = make_projections(read_volume(study_path, cancel=cancel), cancel=cancel)
    sample = from_projections(projections, {}, id=study_path.name, study=study_path.name, source="reviewed")
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        save_sample(sample, cached)
    return sample


def samples_from_picks(csv_path: str | Path, levels=("L3", "T12"), cache_dir: Path | None = None,
                       progress: Progress | None = None, cancel: CancelToken | None = None,
                       warnings: list | None = None) -> list[ScanSample]:
    """One sample per study of a picks CSV with at least one level a person decided.

    Accepted and corrected rows give the level's row; a reviewed ``not_in_scan`` row says the level is
    absent; predicted, flagged, ``levels_disagree``, ``not_found`` (in view, not found: present, but
    nobody placed it) or missing rows leave the level unknown (left out of the loss).
    Studies whose file is missing are skipped with a line in ``warnings``.
    """
    from ctviewer.workflows.slice_locator.picks import PicksFile

    progress = progress or no_progress
    picks = PicksFile.open(csv_path)
    studies = picks.studies
    exams = picks.exam_ids()
    out = []
    for i, exam in enumerate(exams):
        if cancel is not None:
            cancel.raise_if_cancelled()
        progress(i / max(len(exams), 1), f"reading reviewed study {exam}")
        truth = {}
        for lv in levels:
            p = picks.get(exam, lv)
            if p is not None and p.status in CONFIRMED:
                truth[lv] = p
            elif p is not None and p.status == "not_in_scan" and p.is_reviewed:
                truth[lv] = None
        if not truth:
            continue
        where = studies.get(exam)
        if not where or not Path(where).exists():
            if warnings is not None:
                warnings.append(f"{csv_path}: study {exam} skipped: its file is "
                                f"{'not recorded' if not where else 'missing: ' + where}")
            continue
        sample = _study_projections(Path(where), cache_dir, cancel=cancel)
        rows = {}
        for lv, p in truth.items():
            if p is None:
                rows[lv] = np.nan
                continue
            z = p.z_mm if p.z_mm is not None else float(sample.slice_z_mm[p.slice_index])
            rows[lv] = (sample.top_z_mm - z) / PROJECTION_SPACING_MM
        sample.id, sample.study, sample.source = exam, exam, "reviewed"
        sample.level_rows = {lv: rows.get(lv, np.nan) for lv in levels}
        sample.known = {lv: lv in truth for lv in levels}
        out.append(sample)
    progress(1.0, "")
    return out


# -- labelled CT (truth from a label map) ------------------------------------------------------------

def sample_from_labelled_ct(image_path: str | Path, labels_path: str | Path, levels=("L3", "T12"),
                            label_ids: dict | None = None, name: str | None = None) -> ScanSample:
    """A real CT with a TotalSegmentator-style label map: each level at the centroid of its label's
    voxels along z (absent when the label is not in the map)."""
    from ctviewer.io.registry import read_volume
    from ctviewer.workflows.slice_locator.projections import make_projections

    ids = {**VERTEBRA_IDS, **(label_ids or {})}
    volume = read_volume(image_path)
    labels = read_volume(labels_path)
    if labels.shape != volume.shape:
        raise InputError(f"label map shape {labels.shape} differs from the image's {volume.shape}", labels_path)
    projections = make_projections(volume)
    z = {}
    for lv in levels:
        k = np.nonzero(labels.array == ids[lv])[0]
        if k.size == 0:
            z[lv] = None
            continue
        centre = labels.index_to_lps([float(k.mean()), 0.0, 0.0])
        z[lv] = float(np.asarray(centre)[2])
    exam = name or Path(image_path).name.split(".")[0]
    return from_projections(projections, z, id=exam, study=exam, source="labelled CT")
