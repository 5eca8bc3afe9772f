"""Benchmark: what the malformed-file guards cost when opening good files.

Target (issue 14): opening the 300-slice DICOM series and a 512x512x200 NIfTI stays within 5 % of
the time without the guards, measured side by side in the same process.

"Without" runs the same ``registry.read_volume`` with the checks added for malformed files
replaced by no-ops: the header claims against file size and memory (``io/guards.py``, NIfTI's
``_check_header``, DICOM's ``check_claims``) and the collection of library warnings. Runs are
interleaved (with, without, without, with, ...) on warm files and the best of each is compared, so drift
in the machine's load hits both alike.

    .venv/bin/python benchmarks/bench_open_guards.py [--repeat 15] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import time
from pathlib import Path

import numpy as np

from bench_load_dicom import make_series, series_folder  # the DICOM load benchmark's series
from results import Report  # benchmarks/, the script's own folder

SLICES = 300
NIFTI_SHAPE = (512, 512, 200)  # x, y, z as nibabel stores it


def nifti_file() -> Path:
    """A 512x512x200 int16 CT-like .nii.gz (generated once into the benchmark cache)."""
    import nibabel as nib

    path = series_folder(SLICES).parent / "nifti_ct_512x512x200.nii.gz"
    if not path.is_file():
        rng = np.random.default_rng(0)
        xx, yy = np.mgrid[:512, :512]
        body = ((yy - 256) / 200.0) ** 2 + ((xx - 256) / 240.0) ** 2 < 1
        plane = np.where(body, 40, -1000).astype(np.int16)
        data = np.repeat(plane[:, :, None], NIFTI_SHAPE[2], axis=2)
        data += rng.normal(0, 15, data.shape).astype(np.int16)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(".part." + path.name)
        nib.save(nib.Nifti1Image(data, np.diag([0.7, 0.7, 1.25, 1.0])), tmp)
        os.replace(tmp, path)
    return path


def _guard_functions():
    """(module, name) of every check added for malformed files, on the paths these files take."""
    from ctviewer.io import dicom_headers, guards, nifti, registry

    return [(guards, "check_memory"), (guards, "check_plain_size"), (guards, "check_gzip_size"),
            (guards, "check_archive"), (nifti, "_check_header"), (dicom_headers, "check_claims"),
            (registry, "collected_warnings")]


@contextlib.contextmanager
def _replaced(make):
    """Every guard function replaced by ``make(original)`` inside the block."""
    saved = {(module, name): getattr(module, name) for module, name in _guard_functions()}
    for (module, name), original in saved.items():
        setattr(module, name, make(name, original))
    try:
        yield
    finally:
        for (module, name), original in saved.items():
            setattr(module, name, original)


def guards_off():
    """The readers as they were before the guards: every check a no-op, warnings left alone."""
    @contextlib.contextmanager
    def nothing_collected():
        yield []

    def make(name, original):
        return nothing_collected if name == "collected_warnings" else (lambda *args, **kwargs: None)

    return _replaced(make)


def guards_timed(spent: list[float]):
    """The guards as they are, each call's time added to ``spent[0]``."""
    def make(name, original):
        if name == "collected_warnings":
            @contextlib.contextmanager
            def timed_collector():
                start = time.perf_counter()
                with original() as said:
                    spent[0] += time.perf_counter() - start
                    yield said
                    start = time.perf_counter()
                spent[0] += time.perf_counter() - start
            return timed_collector

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start
        return timed

    return _replaced(make)


def open_once(path: Path) -> float:
    from ctviewer.io.registry import read_volume

    gc.collect()
    start = time.perf_counter()
    volume = read_volume(path)
    elapsed = time.perf_counter() - start
    assert volume.array.size > 0
    del volume
    return elapsed


def side_by_side(path: Path, repeat: int) -> tuple[float, float]:
    """Best of ``repeat`` with and without the guards, interleaved, after one warm-up of each."""
    with_guards, without = [], []
    open_once(path)
    with guards_off():
        open_once(path)
    for k in range(repeat):  # which goes first alternates, so neither always finds the cache warmer
        if k % 2:
            with guards_off():
                without.append(open_once(path))
        with_guards.append(open_once(path))
        if not k % 2:
            with guards_off():
                without.append(open_once(path))
    return min(with_guards), min(without)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    folder = series_folder(SLICES)
    if len(list(folder.glob("*.dcm"))) != SLICES:
        print(f"generating {SLICES} slices into {folder} ...")
        make_series(folder, SLICES)
    nifti = nifti_file()

    out = Report(__file__, "Malformed-file guards: cost on good files")
    out(f"registry.read_volume, best of {args.repeat} each, interleaved with / without the guards")
    out(f"{'file':<40} {'with':>8} {'without':>8} {'ratio':>6} {'in the checks':>14}")
    worst = 0.0
    for label, path in ((f"DICOM series, {SLICES} x 512x512 int16", folder),
                        ("NIfTI .nii.gz, 512x512x200 int16", nifti)):
        on, off = side_by_side(path, args.repeat)
        spent = [0.0]
        with guards_timed(spent):
            open_once(path)
        ratio = on / off
        worst = max(worst, ratio)
        out(f"{label:<40} {on:7.3f}s {off:7.3f}s {ratio:6.3f} {spent[0] * 1000:9.2f} ms")
    out("('in the checks': time inside the guard functions themselves during one open, timed call by call)")
    out.verdict("with guards within 5 % of without", worst <= 1.05, f"worst ratio {worst:.3f}")
    return 0 if out.save(record_it=not args.no_record) else 1


if __name__ == "__main__":
    raise SystemExit(main())
