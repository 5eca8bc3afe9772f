"""Every file shipped with pydicom and pydicom-data either loads or is refused with an InputError
that names it: no other exception, no hang. (Globbed from the installed packages; nothing is
downloaded.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.dicom import DicomReader
from tests.conftest import pydicom_corpus

CORPUS = pydicom_corpus()


def _id(path: Path) -> str:
    return "/".join(path.parts[-2:])


def _registry_read_volume():
    """The registry's read_volume, or a skip where another helper's readers do not import yet."""
    try:
        from ctviewer.io.registry import read_volume, readers

        readers()
    except ImportError as exc:
        pytest.skip(f"the registry's other readers are not importable yet: {exc}")
    return read_volume


def _check(volume: Volume) -> None:
    assert isinstance(volume, Volume)
    assert volume.array.ndim in (3, 4) and volume.array.size > 0
    assert volume.array.dtype.kind != "f" or volume.array.dtype.itemsize <= 4  # never float64


@pytest.mark.skipif(not CORPUS, reason="pydicom's test files are not installed")
@pytest.mark.parametrize("path", CORPUS, ids=_id)
def test_dicom_reader_loads_or_names_the_file(path: Path):
    try:
        items = DicomReader().examine(path)
        for item in items:
            _check(item.load())
    except InputError as exc:
        assert str(path) in str(exc)


@pytest.mark.skipif(not CORPUS, reason="pydicom's test files are not installed")
@pytest.mark.parametrize("path", CORPUS, ids=_id)
def test_registry_loads_or_names_the_file(path: Path):
    read_volume = _registry_read_volume()
    try:
        _check(read_volume(path))
    except InputError as exc:
        assert str(path) in str(exc)


def test_corpus_covers_the_hard_cases():
    names = {p.name for p in CORPUS}
    if not names:
        pytest.skip("pydicom's test files are not installed")
    # compressed, big-endian, multi-frame, truncated and non-image files are all there
    assert {"MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_truncated.dcm", "rtplan.dcm"} <= names


def test_corpus_folder_of_non_images_is_refused():
    rtplan = [p for p in CORPUS if p.name == "rtplan.dcm"]
    if not rtplan:
        pytest.skip("pydicom's test files are not installed")
    with pytest.raises(InputError, match="RT Plan has no image"):
        DicomReader().examine(rtplan[0])


def _corpus_folders() -> list[Path]:
    """pydicom's folders of real series (several series, a localizer among axials, no positions)."""
    import pydicom

    root = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
    return sorted({p.parent for p in root.rglob("*") if p.is_file() and p.name != "DICOMDIR"})


@pytest.mark.parametrize("anonymised", [False, True], ids=["as shipped", "series and study UIDs removed"])
def test_corpus_folders_load_or_name_the_file(tmp_path, anonymised):
    """Every folder of pydicom's series opens (grouped by UID, or without it by what the files share)
    or is refused with an InputError naming a path."""
    import pydicom

    folders = _corpus_folders()
    if not folders:
        pytest.skip("pydicom's test files are not installed")
    for folder in folders:
        target = tmp_path / folder.name
        target.mkdir()
        for path in folder.iterdir():
            if not path.is_file():
                continue
            try:
                ds = pydicom.dcmread(path)
            except Exception:  # README files: left out, the reader must cope without them
                continue
            if anonymised:
                for keyword in ("SeriesInstanceUID", "StudyInstanceUID"):
                    if keyword in ds:
                        delattr(ds, keyword)
            ds.save_as(target / path.name)
        try:
            items = DicomReader().examine(target)
            for item in items:
                _check(item.load())
        except InputError as exc:
            assert str(tmp_path) in str(exc)
