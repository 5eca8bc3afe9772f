"""Shared fixtures: where the real data lives, and where the pydicom test corpora are."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real CT and thin-section data beside the checkout (absent in a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (only in the team's checkout)")
    return SHARED_DATA


@pytest.fixture
def user_models(tmp_path, monkeypatch) -> Path:
    """A models folder of the test's own (not created) and no shipped models."""
    from ctviewer.ml import registry

    user = tmp_path / "models"
    monkeypatch.setenv("CTVIEWER_MODELS_DIR", str(user))
    monkeypatch.setattr(registry, "SHIPPED_DIR", tmp_path / "shipped")
    return user


def pydicom_corpus() -> list[Path]:
    """Every DICOM file shipped by pydicom and the pydicom-data package (no download)."""
    import pydicom

    files = sorted((Path(pydicom.__file__).parent / "data" / "test_files").rglob("*"))
    try:
        import data_store  # the pydicom-data package

        files += sorted((Path(data_store.__file__).parent / "data").rglob("*"))
    except ImportError:
        pass
    return [f for f in files if f.is_file() and f.suffix.lower() not in (".py", ".pyc", ".txt", ".md", ".json", ".gz", ".bz2", ".zip")]


def _block_gui_imports() -> None:
    """With CTVIEWER_BLOCK_QT=1 the GUI stack cannot be imported: the core must not need it."""
    import importlib.abc
    import sys

    blocked = ("PySide6", "pyqtgraph", "superqt", "vtkmodules.qt", "app", "shiboken6")

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if any(name == b or name.startswith(b + ".") for b in blocked):
                raise ImportError(f"{name} is blocked: the core tier must run without Qt")
            return None

    sys.meta_path.insert(0, _Blocker())


if __import__("os").environ.get("CTVIEWER_BLOCK_QT"):
    _block_gui_imports()
