"""Projection images for the L3/T12 locator: geometry, table removal, orientation, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from ctviewer.data.volume import CANONICAL_DIRECTION, Volume
from ctviewer.errors import InputError
from ctviewer.workflows.slice_locator.projections import make_projections


def phantom(nz=60, spacing=(2.5, 1.5, 1.5), table=True, origin_z=-300.0):
    """A body cylinder with a bone rod (spine) behind its centre and a bright marker disc at slice 20.

    Canonical axes: axis 0 towards the head, axis 1 front to back, axis 2 right to left.
    """
    ny = nx = 128
    a = np.full((nz, ny, nx), -1000, np.int16)
    yy, xx = np.mgrid[:ny, :nx]
    body = (yy - 60) ** 2 / 40 ** 2 + (xx - 64) ** 2 / 50 ** 2 <= 1
    a[:, body] = 30
    spine = (yy - 80) ** 2 + (xx - 64) ** 2 <= 36
    a[:, spine] = 400
    a[20, (yy - 80) ** 2 + (xx - 64) ** 2 <= 64] = 1400   # a marker in the posterior half
    a[30, (yy - 40) ** 2 + (xx - 64) ** 2 <= 64] = 1400   # a marker in the anterior half
    if table:
        a[:, 108:112, 10:118] = 1000   # couch shell behind the back, separated by air
    return Volume(a, spacing=spacing, origin=(0.0, 0.0, origin_z), direction=CANONICAL_DIRECTION,
                  instance_numbers=list(range(nz, 0, -1)), slice_thickness=spacing[0], modality="CT")


def test_rows_are_millimetres_from_the_top_slice():
    vol = phantom()
    p = make_projections(vol)
    assert p.spacing_mm == 1.0
    assert p.rows == int((60 - 1) * 2.5) + 1
    assert p.top_z_mm == pytest.approx(-300 + 59 * 2.5)
    marker_z = -300 + 20 * 2.5
    centre = int(round(p.body_centre_col[0]))
    assert centre == pytest.approx(64 * 1.5, abs=2)   # projection columns are millimetres too
    row = int(np.argmax(p.frontal[:, centre]))
    assert abs(p.row_to_z(row) - marker_z) <= 1.5
    assert p.z_to_slice(marker_z) == 20
    assert p.instance_numbers[20] == 40


def test_frontal_shows_the_posterior_half_only_and_no_table():
    p = make_projections(phantom())
    anterior_row = int(round(p.z_to_row(-300 + 30 * 2.5)))
    centre = int(round(p.body_centre_col[0]))
    spine_level = np.median(p.frontal[:, centre])
    # The anterior marker is not in the frontal image (only the spine is), but it is in the sagittal one
    # (a slice centre can fall between two 1 mm rows, which then share its value).
    assert p.frontal[anterior_row, centre] == pytest.approx(spine_level, abs=0.02)
    assert p.sagittal[anterior_row - 1:anterior_row + 2].max() > 0.6
    # The couch (1000 HU across the width behind the back) must not show beside the spine.
    assert p.frontal[:, 30:80].max() == 0.0
    assert p.frontal[:, 115:165].max() == 0.0


def test_stored_upside_down_gives_the_same_projection():
    vol = phantom()
    flipped = Volume(vol.array[::-1].copy(), spacing=vol.spacing,
                     origin=tuple(vol.index_to_lps((59, 0, 0))), direction=vol.direction @ np.diag([-1, 1, 1]),
                     instance_numbers=vol.instance_numbers[::-1], modality="CT")
    a, b = make_projections(vol), make_projections(flipped)
    np.testing.assert_allclose(a.frontal, b.frontal)
    assert a.top_z_mm == pytest.approx(b.top_z_mm)
    assert a.instance_numbers == b.instance_numbers  # slice order follows geometry, not file order


def test_sub_millimetre_spacing_is_kept_as_a_float():
    vol = phantom(nz=200, spacing=(0.625, 1.5, 1.5))
    p = make_projections(vol)
    assert p.slice_spacing_mm == pytest.approx(0.625)
    assert p.rows == int(199 * 0.625) + 1


def test_tilted_series_is_refused_and_sagittal_series_warns():
    vol = phantom()
    t = np.radians(12)
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    tilted = Volume(vol.array, spacing=vol.spacing, direction=tilt @ CANONICAL_DIRECTION, modality="CT")
    with pytest.raises(InputError, match="tilted by 12.0°"):
        make_projections(tilted)
    # The same voxels stored as sagittal slices: axis 0 runs right to left.
    stored = np.ascontiguousarray(np.transpose(vol.array, (2, 1, 0)))
    sagittal = Volume(stored, spacing=vol.spacing[::-1], direction=CANONICAL_DIRECTION[:, ::-1], modality="CT")
    p = make_projections(sagittal)
    assert any("not axial" in w for w in p.warnings)
    np.testing.assert_allclose(p.frontal, make_projections(vol).frontal)


def test_air_only_and_photos_are_refused():
    with pytest.raises(InputError, match="no body found"):
        make_projections(Volume(np.full((10, 32, 32), -1000, np.int16), modality="CT"))
    with pytest.raises(InputError, match="photo"):
        make_projections(Volume(np.zeros((1, 8, 8, 3), np.uint8), modality="XC"))
