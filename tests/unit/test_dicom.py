"""The DICOM reader on small synthetic series made with pydicom: ordering by position, spacing
from positions, rescale and dtype, missing slices, uneven steps, gantry tilt, several series,
enhanced multi-frame, compressed transfer syntaxes, colour, and the errors a user sees."""

from __future__ import annotations

import random

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (CTImageStorage, EnhancedCTImageStorage, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless,
                         RTPlanStorage, SecondaryCaptureImageStorage, generate_uid)

from ctviewer.errors import Cancelled, InputError
from ctviewer.io.dicom import DicomReader
from ctviewer.io.dicom_geometry import plan_layout
from ctviewer.progress import CancelToken

ROWS, COLUMNS = 8, 6  # not square, so a transposed slice would show


# -- building synthetic files --------------------------------------------------------------------

def stored_slice(k: int, shape=(ROWS, COLUMNS)) -> np.ndarray:
    """Stored values unique to slice k (and to each row and column)."""
    rows, columns = shape
    return (1000 * k + 10 * np.arange(rows)[:, None] + np.arange(columns)[None, :] % 10).astype(np.int16)


def base_dataset(sop_class=CTImageStorage, syntax=ExplicitVRLittleEndian, series_uid=None) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CT", "P1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", series_uid or generate_uid()
    return ds


def image_dataset(pixels: np.ndarray, **kw) -> Dataset:
    ds = base_dataset(**{k: kw.pop(k) for k in ("sop_class", "syntax", "series_uid") if k in kw})
    ds.Rows, ds.Columns = pixels.shape[:2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 0 if pixels.dtype.kind == "u" else 1
    ds.PixelData = pixels.tobytes()
    for key, value in kw.items():
        setattr(ds, key, value)
    return ds


def write_series(folder, positions, *, series_uid=None, description="CT TEST", slope=1, intercept=-1024,
                 orientation=(1, 0, 0, 0, 1, 0), syntax=ExplicitVRLittleEndian, shapes=None, shape=None):
    """One file per position, named in shuffled order, InstanceNumbers reversed."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    names = [f"f{i:03d}.dcm" for i in range(len(positions))]
    random.Random(1).shuffle(names)
    files = []
    for k, (position, name) in enumerate(zip(positions, names)):
        pixels = np.zeros(shapes[k], np.int16) if shapes else stored_slice(k, shape or (ROWS, COLUMNS))
        ds = image_dataset(pixels, series_uid=series_uid, SeriesDescription=description,
                           InstanceNumber=len(positions) - k, ImagePositionPatient=list(position),
                           ImageOrientationPatient=list(orientation), PixelSpacing=[0.7, 0.8],
                           SliceThickness=5.0, RescaleSlope=slope, RescaleIntercept=intercept,
                           WindowCenter=40, WindowWidth=400)
        if syntax != ExplicitVRLittleEndian:
            ds.compress(syntax, encoding_plugin="pyjpegls" if syntax == JPEGLSLossless else "")
        pydicom.dcmwrite(folder / name, ds, enforce_file_format=True)
        files.append(folder / name)
    return files


def load_one(path):
    items = DicomReader().examine(path)
    assert len(items) == 1, items
    return items[0], items[0].load()


def axial(count, step, z0=-100.0):
    return [(-50.0, -60.0, z0 + k * step) for k in range(count)]


# -- ordering, spacing, values -------------------------------------------------------------------

def test_slices_sorted_by_position_with_spacing_from_positions(tmp_path):
    positions = axial(6, 0.625)
    files = write_series(tmp_path / "s", positions[::-1])  # stored top to bottom
    item, vol = load_one(tmp_path / "s")
    assert item.format == "dicom" and item.n_slices == 6 and item.confidence >= 0.9
    assert "CT TEST — 6 slices" in item.description
    assert vol.spacing == pytest.approx((0.625, 0.7, 0.8))
    assert vol.array.dtype == np.int16 and vol.shape == (6, ROWS, COLUMNS)
    for path in files:
        ds = pydicom.dcmread(path)
        k = int(round((ds.ImagePositionPatient[2] - positions[0][2]) / 0.625))
        assert np.allclose(vol.index_to_lps((k, 0, 0)), [float(v) for v in ds.ImagePositionPatient])
        assert np.array_equal(vol.array[k], ds.pixel_array.astype(np.int16) - 1024)
        assert vol.instance_numbers[k] == ds.InstanceNumber
    # one pixel step along each in-plane axis lands where the header says
    assert np.allclose(vol.index_to_lps((0, 1, 0)) - vol.index_to_lps((0, 0, 0)), [0, 0.7, 0])
    assert np.allclose(vol.index_to_lps((0, 0, 1)) - vol.index_to_lps((0, 0, 0)), [0.8, 0, 0])
    assert vol.modality == "CT" and vol.name == "CT TEST" and vol.window == (400, 40)
    assert vol.slice_thickness == 5.0 and vol.warnings == []
    assert vol.meta["series_uid"] and vol.meta["patient_id"] == "P1"


def test_fractional_slope_gives_float32_and_integral_slope_int16(tmp_path):
    write_series(tmp_path / "f", axial(3, 2.0), slope=0.5, intercept=-10)
    _, vol = load_one(tmp_path / "f")
    assert vol.array.dtype == np.float32
    assert np.allclose(vol.array[1], stored_slice(1) * 0.5 - 10)
    write_series(tmp_path / "i", axial(3, 2.0), slope=2, intercept=-1024)
    _, vol = load_one(tmp_path / "i")
    assert vol.array.dtype == np.int16 and np.array_equal(vol.array[2], stored_slice(2) * 2 - 1024)


def test_values_too_big_for_int16_become_int32(tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for k in range(2):
        pixels = np.full((ROWS, COLUMNS), 40000 + k, np.uint16)
        ds = image_dataset(pixels, series_uid="1.2.9", ImagePositionPatient=[0, 0, k],
                           ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1],
                           RescaleSlope=1, RescaleIntercept=-10)
        pydicom.dcmwrite(folder / f"{k}.dcm", ds, enforce_file_format=True)
    _, vol = load_one(folder)
    assert vol.array.dtype == np.int32 and vol.array[1, 0, 0] == 39991


def test_per_slice_rescale(tmp_path):
    folder = tmp_path / "per"
    files = write_series(folder, axial(2, 1.0))
    ds = pydicom.dcmread(files[1])
    ds.RescaleIntercept = -1000
    ds.save_as(files[1])
    _, vol = load_one(folder)
    k = int(round(ds.ImagePositionPatient[2] + 100))
    assert vol.array.dtype == np.int16 and vol.array[k, 0, 0] == ds.pixel_array[0, 0] - 1000


# -- geometry that is not a plain stack ----------------------------------------------------------

def test_missing_slice_is_filled_blank_and_named(tmp_path):
    positions = [p for k, p in enumerate(axial(7, 1.25)) if k != 3]
    write_series(tmp_path / "gap", positions)
    _, vol = load_one(tmp_path / "gap")
    assert vol.shape[0] == 7 and vol.spacing[0] == pytest.approx(1.25)
    assert any("missing" in w and "-96.25" in w for w in vol.warnings), vol.warnings
    assert np.all(vol.array[3] == vol.array.min())
    assert vol.instance_numbers[3] is None
    assert np.allclose(vol.index_to_lps((4, 0, 0)), positions[3])


def test_uneven_spacing_is_resampled_onto_a_regular_grid(tmp_path):
    zs = [0.0, 1.0, 2.0, 3.3, 4.3]
    write_series(tmp_path / "uneven", [(0.0, 0.0, z) for z in zs])
    _, vol = load_one(tmp_path / "uneven")
    assert any("uneven" in w for w in vol.warnings)
    assert vol.array.dtype == np.int16 and vol.shape[0] == 5
    assert vol.spacing[0] == pytest.approx(4.3 / 4)
    assert np.array_equal(vol.array[0], stored_slice(0) - 1024)
    assert np.array_equal(vol.array[-1], stored_slice(4) - 1024)
    assert np.allclose(vol.index_to_lps((4, 0, 0)), (0, 0, 4.3))


def test_gantry_tilt_keeps_positions_exact(tmp_path):
    tilt = np.radians(15.0)
    positions = [(0.0, -k * 2.5 * np.tan(tilt), k * 2.5) for k in range(5)]
    write_series(tmp_path / "tilt", positions)
    _, vol = load_one(tmp_path / "tilt")
    assert any("tilt" in w and "15.00" in w for w in vol.warnings), vol.warnings
    for k, position in enumerate(positions):
        assert np.allclose(vol.index_to_lps((k, 0, 0)), position, atol=1e-4)


def test_mixed_image_sizes_keep_the_largest_group(tmp_path):
    shapes = [(ROWS, COLUMNS)] * 4 + [(4, 4)]
    write_series(tmp_path / "mixed", axial(5, 1.0), shapes=shapes)
    item, vol = load_one(tmp_path / "mixed")
    assert item.n_slices == 4 and vol.shape == (4, ROWS, COLUMNS)
    assert any("mixes image sizes" in w for w in vol.warnings)


def test_layout_rules_directly():
    layout = plan_layout(np.array([[0, 0, 2.0], [0, 0, 0.0], [0, 0, 1.0]]), (1, 0, 0, 0, 1, 0), 1.0)
    assert layout.slots == [1, 2, 0] and layout.spacing_z == pytest.approx(1.0)
    repeated = plan_layout(np.array([[0, 0, 0.0], [0, 0, 0.0], [0, 0, 1.0]]), (1, 0, 0, 0, 1, 0), 1.0)
    assert len(repeated.slots) == 2 and "repeat" in repeated.warnings[0]


# -- several series, multi-frame, compression, colour --------------------------------------------

def test_two_series_in_one_folder_most_slices_first(tmp_path):
    from ctviewer.io.registry import read_volume

    write_series(tmp_path / "study" / "a", axial(3, 1.0), series_uid="1.2.826.0.1.11", description="SHORT")
    write_series(tmp_path / "study" / "b", axial(5, 2.0), series_uid="1.2.826.0.1.22", description="LONG")
    items = DicomReader().examine(tmp_path / "study")
    assert [it.n_slices for it in items] == [5, 3]
    assert [it.meta["series_uid"] for it in items] == ["1.2.826.0.1.22", "1.2.826.0.1.11"]
    try:
        vol = read_volume(tmp_path / "study", series="1.2.826.0.1.11")
    except ImportError as exc:  # another helper's readers may not be importable yet
        pytest.skip(f"registry readers not importable: {exc}")
    assert vol.shape[0] == 3 and vol.name == "SHORT"


def test_enhanced_multiframe_ct_is_sorted_by_position(tmp_path):
    order = [2, 0, 3, 1]  # frames stored out of place order
    ds = base_dataset(sop_class=EnhancedCTImageStorage)
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLUMNS, len(order)
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    shared = Dataset()
    shared.PixelMeasuresSequence = [Dataset()]
    shared.PixelMeasuresSequence[0].PixelSpacing = [0.5, 0.5]
    shared.PixelMeasuresSequence[0].SliceThickness = 2.0
    shared.PlaneOrientationSequence = [Dataset()]
    shared.PlaneOrientationSequence[0].ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SharedFunctionalGroupsSequence = [shared]
    ds.PerFrameFunctionalGroupsSequence = []
    for k in order:
        group = Dataset()
        group.PlanePositionSequence = [Dataset()]
        group.PlanePositionSequence[0].ImagePositionPatient = [0, 0, 10.0 + 2.0 * k]
        group.PixelValueTransformationSequence = [Dataset()]
        group.PixelValueTransformationSequence[0].RescaleSlope = 1
        group.PixelValueTransformationSequence[0].RescaleIntercept = -1024
        ds.PerFrameFunctionalGroupsSequence.append(group)
    ds.PixelData = b"".join(stored_slice(k).tobytes() for k in order)
    pydicom.dcmwrite(tmp_path / "enhanced.dcm", ds, enforce_file_format=True)
    item, vol = load_one(tmp_path / "enhanced.dcm")
    assert item.n_slices == 4 and vol.array.dtype == np.int16
    assert vol.spacing == pytest.approx((2.0, 0.5, 0.5)) and vol.slice_thickness == 2.0
    for k in range(4):
        assert np.array_equal(vol.array[k], stored_slice(k) - 1024)
        assert np.allclose(vol.index_to_lps((k, 0, 0)), (0, 0, 10.0 + 2.0 * k))


@pytest.mark.parametrize("syntax", [RLELossless, JPEGLSLossless, JPEG2000Lossless],
                         ids=["rle", "jpeg-ls", "jpeg2000"])
def test_compressed_series_decode(tmp_path, syntax):
    try:
        # 64 x 48: OpenJPEG's encoder refuses images smaller than its resolution levels
        write_series(tmp_path / "c", axial(3, 1.0)[::-1], syntax=syntax, shape=(64, 48))
    except (RuntimeError, ImportError, NotImplementedError, ValueError) as exc:
        pytest.skip(f"no encoder for {syntax.name}: {exc}")
    _, vol = load_one(tmp_path / "c")
    assert vol.array.dtype == np.int16 and vol.meta["transfer_syntax"] == syntax.name
    for k in range(3):  # stored top to bottom, so the last file written is the first slice
        assert np.array_equal(vol.array[k], stored_slice(2 - k, (64, 48)) - 1024)


def test_colour_secondary_capture_is_rgb_uint8(tmp_path):
    rgb = np.zeros((ROWS, COLUMNS, 3), np.uint8)
    rgb[..., 0], rgb[2, 3] = 200, (1, 2, 3)
    ds = base_dataset(sop_class=SecondaryCaptureImageStorage)
    ds.Modality, ds.Rows, ds.Columns = "OT", ROWS, COLUMNS
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = rgb.tobytes()
    pydicom.dcmwrite(tmp_path / "sc.dcm", ds, enforce_file_format=True)
    _, vol = load_one(tmp_path / "sc.dcm")
    assert vol.is_rgb and vol.array.shape == (1, ROWS, COLUMNS, 3) and vol.array.dtype == np.uint8
    assert tuple(vol.array[0, 2, 3]) == (1, 2, 3) and vol.name == "sc.dcm"


def test_single_image_without_position_is_one_slice_with_pixel_spacing(tmp_path):
    ds = image_dataset(stored_slice(0), sop_class=SecondaryCaptureImageStorage,
                       syntax=ImplicitVRLittleEndian, PixelSpacing=[0.3, 0.4])
    pydicom.dcmwrite(tmp_path / "one.dcm", ds, enforce_file_format=True)
    _, vol = load_one(tmp_path / "one.dcm")
    assert vol.shape == (1, ROWS, COLUMNS) and vol.spacing[1:] == (0.3, 0.4)
    assert np.array_equal(vol.array[0], stored_slice(0))


# -- progress, cancel ----------------------------------------------------------------------------

def test_progress_per_slice_and_cancel(tmp_path):
    write_series(tmp_path / "p", axial(5, 1.0))
    item = DicomReader().examine(tmp_path / "p")[0]
    seen = []
    item.load(progress=lambda fraction, message="": seen.append(fraction))
    assert len(seen) >= 5 and seen == sorted(seen) and seen[-1] == 1.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        item.load(cancel=token)


# -- what is refused, and how --------------------------------------------------------------------

def test_rt_plan_says_it_has_no_image(tmp_path):
    ds = base_dataset(sop_class=RTPlanStorage)
    ds.Modality = "RTPLAN"
    pydicom.dcmwrite(tmp_path / "plan.dcm", ds, enforce_file_format=True)
    with pytest.raises(InputError, match="RT Plan has no image") as err:
        DicomReader().examine(tmp_path / "plan.dcm")
    assert "plan.dcm" in str(err.value)
    with pytest.raises(InputError, match="hold no image"):
        DicomReader().examine(tmp_path)


def test_truncated_pixel_data_names_the_file(tmp_path):
    files = write_series(tmp_path / "t", axial(2, 1.0))
    data = files[0].read_bytes()
    files[0].write_bytes(data[:-10])
    with pytest.raises(InputError, match="truncated") as err:
        DicomReader().examine(files[0])
    assert files[0].name in str(err.value)
    with pytest.raises(InputError, match="truncated"):
        DicomReader().examine(tmp_path / "t")[0].load()


def test_undecodable_pixel_data_is_an_input_error(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    ds = image_dataset(stored_slice(0).astype(np.uint8), syntax=JPEGBaseline8Bit,
                       ImagePositionPatient=[0, 0, 0], ImageOrientationPatient=[1, 0, 0, 0, 1, 0])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = encapsulate([b"\xff\xd8 not a jpeg at all \xff\xd9"])
    ds["PixelData"].VR = "OB"
    pydicom.dcmwrite(tmp_path / "bad.dcm", ds, enforce_file_format=True)
    item = DicomReader().examine(tmp_path / "bad.dcm")[0]
    with pytest.raises(InputError, match="cannot decode") as err:
        item.load()
    assert "bad.dcm" in str(err.value)


def test_other_files_are_left_to_other_readers(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert DicomReader().examine(tmp_path / "notes.txt") == []
    assert DicomReader().examine(tmp_path / "image.png") == []
    assert DicomReader().examine(tmp_path) == []


def test_dicomdir_is_refused_with_advice(tmp_path):
    ds = base_dataset(sop_class="1.2.840.10008.1.3.10")
    pydicom.dcmwrite(tmp_path / "DICOMDIR", ds, enforce_file_format=True)
    with pytest.raises(InputError, match="DICOMDIR"):
        DicomReader().examine(tmp_path / "DICOMDIR")


def test_icon_image_before_the_pixels_does_not_confuse_the_fast_read(tmp_path):
    ds = image_dataset(stored_slice(1), ImagePositionPatient=[0, 0, 0], PixelSpacing=[1, 1],
                       ImageOrientationPatient=[1, 0, 0, 0, 1, 0], RescaleIntercept=-1024, RescaleSlope=1)
    icon = Dataset()
    icon.Rows = icon.Columns = 2
    icon.SamplesPerPixel, icon.PhotometricInterpretation = 1, "MONOCHROME2"
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PixelData = bytes(4)
    ds.IconImageSequence = [icon]
    pydicom.dcmwrite(tmp_path / "icon.dcm", ds, enforce_file_format=True)
    _, vol = load_one(tmp_path / "icon.dcm")
    assert np.array_equal(vol.array[0], stored_slice(1) - 1024)
