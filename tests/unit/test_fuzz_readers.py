"""Property-based fuzzing of every reader's header (Hypothesis): a mutated file gives a valid Volume or
an InputError — never another exception, never a hang, never a big allocation before the refusal.

Each format starts from a small valid file written by the library users' tools use (nibabel, pynrrd,
numpy, pydicom, Pillow, tifffile, zipfile); Hypothesis overwrites bytes of its header (for
``.nii.gz`` the inflated header, recompressed, so that the mutation reaches the parser rather than
only breaking the CRC) and sometimes cuts the file short. The run is bounded for CI: a fixed
number of examples per format, derandomized, no example database, a per-example time budget
enforced with SIGALRM, and an address-space limit so that an allocation the guards should have
prevented fails the test as a MemoryError instead of swapping the machine.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import resource
import signal
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is a test dependency (requirements-dev.txt)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ctviewer.errors import InputError  # noqa: E402

SECONDS_PER_EXAMPLE = 5
#: Room above the test process's own address space for a reader to work in (tiny files need little).
EXTRA_ADDRESS_SPACE = 1 << 30
FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- seed files ----------------------------------------------------------------------------------
def _volume_array() -> np.ndarray:
    return (np.arange(4 * 5 * 6) % 97 - 20).astype(np.int16).reshape(6, 5, 4)


def seed_nifti(gz: bool) -> bytes:
    import nibabel as nib

    img = nib.Nifti1Image(_volume_array(), np.diag([0.7, 0.8, 2.5, 1.0]))
    raw = img.header.binaryblock + b"\0" * 4 + _volume_array().tobytes(order="F")
    return gzip.compress(raw, mtime=0) if gz else raw


def seed_nrrd(tmp: Path, seg: bool) -> bytes:
    import nrrd

    path = tmp / ("seed.seg.nrrd" if seg else "seed.nrrd")
    header = {"space": "left-posterior-superior", "space directions": np.diag([0.7, 0.8, 2.5]),
              "space origin": np.array([1.0, 2.0, 3.0]), "encoding": "gzip" if seg else "raw"}
    data = (_volume_array() % 3).astype(np.uint8) if seg else _volume_array()
    if seg:
        header.update({"Segment0_Name": "liver", "Segment0_LabelValue": "1", "Segment0_Layer": "0",
                       "Segment0_Color": "0.9 0.1 0.1", "Segment1_Name": "spine", "Segment1_LabelValue": "2",
                       "Segment1_Layer": "0"})
    nrrd.write(str(path), data, header, index_order="C")
    return path.read_bytes()


def seed_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, _volume_array())
    return buffer.getvalue()


def seed_dicom() -> bytes:
    import pydicom
    from pydicom.uid import generate_uid

    from tests.dicom_series import ct_slice

    ds = ct_slice(np.arange(8 * 8, dtype=np.int16).reshape(8, 8), (0, 0, 0), series_uid=generate_uid(),
                  InstanceNumber=1)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def seed_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.arange(12 * 10 * 3, dtype=np.uint8).reshape(12, 10, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


def seed_tiff() -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.arange(12 * 10, dtype=np.uint16).reshape(12, 10))
    return buffer.getvalue()


def seed_keras() -> bytes:
    """The layout of a Keras 3 ``.keras`` archive (Keras itself is not started by these checks)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps({"class_name": "Sequential", "config": {"layers": []}}))
        archive.writestr("model.weights.h5", bytes(range(256)) * 16)
    return buffer.getvalue()


def seed_card() -> bytes:
    return json.dumps({"name": "m", "task": "slice_locator", "format_version": 1, "version": "1",
                       "inputs": {"width_px": 128, "spacing_mm": [None, 3.0, 3.0]},
                       "outputs": {"levels": ["L3", "T12"], "threshold": 0.3}}).encode()


# -- mutations -------------------------------------------------------------------------------------
INTERESTING = [0x00, 0xFF, 0x7F, 0x80, ord("-"), ord("9"), ord("\n"), ord(" "), ord("a"), ord("."), ord("e")]


def mutations(header_bytes: int):
    """(position, byte) overwrites inside the first ``header_bytes`` bytes, and maybe a cut length."""
    byte = st.one_of(st.sampled_from(INTERESTING), st.integers(0, 255))
    edit = st.tuples(st.integers(0, header_bytes - 1), byte)
    return st.tuples(st.lists(edit, min_size=1, max_size=6), st.one_of(st.none(), st.integers(0, 4096)))


def mutate(data: bytes, edits, cut: int | None, header_bytes: int) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        if position < len(out):
            out[min(position, header_bytes - 1)] = value
    return bytes(out[:cut] if cut is not None else out)


@contextmanager
def budget(seconds: int):
    """Fail an example that runs past ``seconds`` (a hang) and one that allocates far beyond the file."""
    def expired(signum, frame):
        raise TimeoutError(f"reader still busy after {seconds} s")

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        in_use = int(fh.read().split()[0]) * resource.getpagesize()
    limit = in_use + EXTRA_ADDRESS_SPACE
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    # pytest-timeout may be counting down on the same timer: its time left is put back afterwards
    previous = signal.signal(signal.SIGALRM, expired)
    outer_left, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_left:
            signal.setitimer(signal.ITIMER_REAL, max(0.001, outer_left - (time.monotonic() - started)))


def assert_valid(volume) -> None:
    """What every caller of a reader relies on: a real grid, finite geometry, a number dtype."""
    arr = volume.array
    assert arr.ndim in (3, 4) and all(s > 0 for s in arr.shape), arr.shape
    assert arr.dtype.kind in "biuf", arr.dtype
    assert all(math.isfinite(s) and s > 0 for s in volume.spacing), volume.spacing
    assert all(math.isfinite(o) for o in volume.origin), volume.origin
    assert np.all(np.isfinite(volume.direction)), volume.direction


def read_as_image(path: Path) -> None:
    from ctviewer.io.registry import read_volume

    assert_valid(read_volume(path))


def read_as_labels(path: Path) -> None:
    from ctviewer.io.label_files import read_label_map

    labels = read_label_map(path)
    assert_valid(labels.volume)
    assert labels.volume.array.dtype in (np.uint8, np.uint16)


def read_model(path: Path) -> None:
    """The checks made before Keras starts: the card, and the archive's directory."""
    from ctviewer.ml.registry import find_model

    find_model(path)


# name: (file name, seed builder, bytes of header to mutate, reading function)
FORMATS = {
    "nifti .nii": ("scan.nii", lambda tmp: seed_nifti(False), 352, read_as_image),
    "nifti .nii.gz": ("scan.nii.gz", lambda tmp: seed_nifti(True), 352, read_as_image),
    "nrrd": ("scan.nrrd", lambda tmp: seed_nrrd(tmp, seg=False), 200, read_as_image),
    "seg.nrrd": ("labels.seg.nrrd", lambda tmp: seed_nrrd(tmp, seg=True), 600, read_as_labels),
    "npy": ("scan.npy", lambda tmp: seed_npy(), 128, read_as_image),
    "dicom": ("slice.dcm", lambda tmp: seed_dicom(), 700, read_as_image),
    "png": ("photo.png", lambda tmp: seed_png(), 60, read_as_image),
    "tiff": ("photo.tif", lambda tmp: seed_tiff(), 200, read_as_image),
    "keras": ("m.keras", lambda tmp: seed_keras(), 4096, read_model),
    "model card": ("m.json", lambda tmp: seed_card(), 300, read_model),
}


@pytest.mark.parametrize("fmt", list(FORMATS), ids=list(FORMATS))
def test_mutated_header_gives_a_volume_or_an_input_error(fmt, tmp_path, user_models):
    name, build, header_bytes, read = FORMATS[fmt]
    seed = build(tmp_path)
    folder = tmp_path / "case"
    folder.mkdir()
    path = folder / name
    # a model's card and archive sit side by side; the one not fuzzed stays good
    partner = {"m.keras": ("m.json", seed_card()), "m.json": ("m.keras", seed_keras())}.get(name)
    if partner:
        (folder / partner[0]).write_bytes(partner[1])
    read(_write(path, seed, fmt, [], None, header_bytes))  # the seed itself reads

    @FUZZ
    @given(mutations(header_bytes))
    def check(change):
        edits, cut = change
        _write(path, seed, fmt, edits, cut, header_bytes)
        read_or_refuse_in_one_line(read, path)

    check()


def _write(path: Path, seed: bytes, fmt: str, edits, cut, header_bytes: int) -> Path:
    if fmt == "nifti .nii.gz":  # mutate the inflated header, then compress again
        raw = mutate(gzip.decompress(seed), edits, None, header_bytes)
        data = gzip.compress(raw, mtime=0)
        path.write_bytes(data[:cut] if cut is not None else data)
    else:
        path.write_bytes(mutate(seed, edits, cut, header_bytes))
    return path


#: Values a broken exporter or a hand edit leaves in a text header field.
ODD_VALUES = ["-1", "0", "nan", "inf", "1e309", "abc", "", "99999999999", "(1,2,3)", "(nan,0,0) (0,1,0) (0,0,1)",
              "none", "1 2", "3.5", "-0", "(1,0,0) (0,1,0)", "gzip", "raw", "short", "block", "???", "\x00"]


@pytest.mark.parametrize("fmt", ["nrrd", "seg.nrrd"])
def test_nrrd_fields_with_odd_values_give_a_volume_or_an_input_error(fmt, tmp_path, user_models):
    """Byte flips rarely make a text header say something odd but well-formed; here whole field
    values are replaced ('sizes: nan', 'space directions: (1,0,0) (0,1,0)', 'Segment1_Layer: 1e309')."""
    name, build, _, read = FORMATS[fmt]
    seed = build(tmp_path)
    header, _, data = seed.partition(b"\n\n")
    lines = header.decode("latin-1").split("\n")
    path = tmp_path / name

    @FUZZ
    @given(st.lists(st.tuples(st.integers(1, len(lines) - 1), st.sampled_from(ODD_VALUES)), min_size=1, max_size=3))
    def check(changes):
        edited = list(lines)
        for index, odd in changes:
            field = edited[index].split(":", 1)[0]
            edited[index] = f"{field}:{'=' if ':=' in edited[index] else ''} {odd}"
        path.write_bytes("\n".join(edited).encode("latin-1") + b"\n\n" + data)
        read_or_refuse_in_one_line(read, path)

    check()


def read_or_refuse_in_one_line(read, path: Path) -> None:
    """A reader given a mutated file returns within the budget or refuses it with one InputError line."""
    try:
        with budget(SECONDS_PER_EXAMPLE):
            read(path)
    except InputError as exc:
        assert str(exc).strip() and "\n" not in str(exc), repr(exc)
