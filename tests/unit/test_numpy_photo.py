"""NumPy arrays (.npy, .npz, .raw + sidecar) and photos (PNG, JPEG, TIFF) as volumes."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ctviewer.data.volume import Volume
from ctviewer.errors import InputError
from ctviewer.io.numpy_io import NumpyReader
from ctviewer.io.photo import PhotoReader
from ctviewer.io.registry import read_volume
from ctviewer.io.writers import write_volume


def load_one(path: Path, reader) -> Volume:
    items = reader.examine(path)
    assert items, f"{path} not recognised"
    return items[0].load()


# -- .npy / .npz / .raw ------------------------------------------------------------------------
def test_npy_with_sidecar_keeps_dtype_and_geometry(tmp_path):
    cube = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4) - 1000
    np.save(tmp_path / "cube.npy", cube)
    (tmp_path / "cube.json").write_text(json.dumps({"spacing": [2.0, 0.5, 0.25], "origin": [1, 2, 3],
                                                    "modality": "CT"}))
    volume = load_one(tmp_path / "cube.npy", NumpyReader())
    assert volume.array.dtype == np.int16 and np.array_equal(volume.array, cube)
    assert volume.spacing == (2.0, 0.5, 0.25) and volume.origin == (1.0, 2.0, 3.0)
    assert volume.modality == "CT" and not volume.warnings


def test_npy_without_sidecar_warns_about_spacing(tmp_path):
    np.save(tmp_path / "soil.npy", np.zeros((3, 4, 5), np.uint8))
    volume = read_volume(tmp_path / "soil.npy")
    assert volume.spacing == (1.0, 1.0, 1.0)
    assert any('add soil.json with "spacing": [z, y, x]' in w for w in volume.warnings)


def test_npy_2d_and_rgb(tmp_path):
    np.save(tmp_path / "slice.npy", np.ones((6, 7), np.float32))
    np.save(tmp_path / "photo.npy", np.zeros((6, 7, 3), np.uint8))
    assert load_one(tmp_path / "slice.npy", NumpyReader()).array.shape == (1, 6, 7)
    photo = load_one(tmp_path / "photo.npy", NumpyReader())
    assert photo.array.shape == (1, 6, 7, 3) and photo.is_photo and photo.modality == "XC"


def test_npz_gives_one_loadable_per_image_array(tmp_path):
    np.savez(tmp_path / "bundle.npz", image=np.zeros((2, 3, 4), np.int16), mask=np.ones((2, 3, 4), bool),
             scalars=np.arange(5))
    items = NumpyReader().examine(tmp_path / "bundle.npz")
    assert sorted(item.meta["array"] for item in items) == ["image", "mask"]
    mask = next(item for item in items if item.meta["array"] == "mask").load()
    assert mask.array.dtype == np.uint8 and mask.name == "mask"


def test_pickled_npy_is_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="contains Python objects; refused for safety") as err:
        read_volume(tmp_path / "objects.npy")
    assert "objects.npy" in str(err.value)


def test_truncated_npy_reports_sizes(tmp_path):
    np.save(tmp_path / "full.npy", np.zeros((10, 10, 10), np.int16))
    data = (tmp_path / "full.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:1000])
    with pytest.raises(InputError, match=rf"header says {len(data)} bytes, file holds 1000") as err:
        read_volume(tmp_path / "cut.npy")
    assert "cut.npy" in str(err.value)


def test_raw_with_sidecar(tmp_path):
    cube = (np.arange(60, dtype=np.int16) - 30).reshape(3, 4, 5)
    (tmp_path / "scan.raw").write_bytes(cube.astype(">i2").tobytes())
    (tmp_path / "scan.json").write_text(json.dumps({"shape": [3, 4, 5], "dtype": "int16", "byte_order": "big",
                                                    "spacing": [1, 2, 3]}))
    volume = load_one(tmp_path / "scan.raw", NumpyReader())
    assert volume.array.dtype == np.int16 and np.array_equal(volume.array, cube) and volume.spacing == (1, 2, 3)


def test_raw_of_wrong_size_reports_the_numbers(tmp_path):
    (tmp_path / "scan.raw").write_bytes(b"\x00" * 100)
    (tmp_path / "scan.json").write_text(json.dumps({"shape": [3, 4, 5], "dtype": "int16"}))
    with pytest.raises(InputError, match="needs 120 bytes, file holds 100") as err:
        read_volume(tmp_path / "scan.raw")
    assert "scan.raw" in str(err.value)


def test_raw_without_sidecar_says_what_is_missing(tmp_path):
    (tmp_path / "lonely.raw").write_bytes(b"\x00" * 8)
    with pytest.raises(InputError, match="lonely.json"):
        NumpyReader().examine(tmp_path / "lonely.raw")


# -- photos ------------------------------------------------------------------------------------
def _rgb(h=12, w=17) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_png_is_a_one_slice_photo(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "section.png")
    volume = read_volume(tmp_path / "section.png")
    assert volume.array.shape == (1, 12, 17, 3) and volume.array.dtype == np.uint8
    assert np.array_equal(volume.array[0], _rgb())
    assert volume.modality == "XC" and volume.name == "section.png" and volume.meta["pixel_units"]


def test_rgba_drops_alpha_and_warns_only_when_transparent(tmp_path):
    rgba = np.dstack([_rgb(), np.full((12, 17), 255, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "opaque.png")
    rgba[0, 0, 3] = 10
    Image.fromarray(rgba, "RGBA").save(tmp_path / "clear.png")
    opaque = load_one(tmp_path / "opaque.png", PhotoReader())
    assert opaque.array.shape == (1, 12, 17, 3) and not opaque.warnings
    assert any("alpha" in w for w in load_one(tmp_path / "clear.png", PhotoReader()).warnings)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_grey_png_stays_grey_in_its_dtype(tmp_path, dtype):
    grey = (np.arange(12 * 17).reshape(12, 17) * (200 if dtype == np.uint16 else 1) % 60000).astype(dtype)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    volume = load_one(tmp_path / "grey.png", PhotoReader())
    assert volume.array.shape == (1, 12, 17) and volume.array.dtype == dtype
    assert np.array_equal(volume.array[0], grey)


def _png16(path: Path, image: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow cannot write one); rows cycle through all five PNG filters."""
    h, w, c = image.shape
    raw = image.astype(">u2").view(np.uint8).reshape(h, w * c * 2).astype(np.int32)
    bpp, out = c * 2, []
    for y in range(h):
        line, prior = raw[y], raw[y - 1] if y else np.zeros_like(raw[0])
        left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int32), prior[:-bpp]])
        p = left + prior - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prior), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
        kind = y % 5
        pred = [0, left, prior, (left + prior) // 2, paeth][kind]
        out.append(bytes([kind]) + ((line - pred) & 0xFF).astype(np.uint8).tobytes())

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"".join(out)))
                     + chunk(b"IEND", b""))


def test_16_bit_rgb_png_keeps_16_bits(tmp_path):
    image = np.random.default_rng(2).integers(0, 65536, (11, 9, 3)).astype(np.uint16)
    _png16(tmp_path / "rgb16.png", image)
    volume = load_one(tmp_path / "rgb16.png", PhotoReader())
    assert volume.array.dtype == np.uint16 and volume.array.shape == (1, 11, 9, 3)
    assert np.array_equal(volume.array[0], image)


def _png16_by_pypng(path: Path, image: np.ndarray, interlace: bool = False) -> None:
    import png

    h, w, c = image.shape
    writer = png.Writer(w, h, bitdepth=16, greyscale=c in (1, 2), alpha=c in (2, 4), interlace=interlace)
    with open(path, "wb") as fh:
        writer.write(fh, image.reshape(h, w * c))


def test_interlaced_16_bit_rgb_png_keeps_16_bits(tmp_path):
    image = np.random.default_rng(5).integers(0, 65536, (13, 10, 3)).astype(np.uint16)
    _png16_by_pypng(tmp_path / "adam7.png", image, interlace=True)
    volume = load_one(tmp_path / "adam7.png", PhotoReader())
    assert volume.array.dtype == np.uint16 and volume.array.shape == (1, 13, 10, 3)
    assert np.array_equal(volume.array[0], image)


@pytest.mark.parametrize("colour", [True, False])
def test_16_bit_png_with_alpha_drops_it_and_warns_only_when_transparent(tmp_path, colour):
    rng = np.random.default_rng(6)
    samples = rng.integers(0, 65536, (7, 8, 3 if colour else 1)).astype(np.uint16)
    image = np.dstack([samples, np.full((7, 8), 65535, np.uint16)])
    _png16_by_pypng(tmp_path / "opaque.png", image)
    image[2, 3, -1] = 100
    _png16_by_pypng(tmp_path / "clear.png", image)
    opaque = load_one(tmp_path / "opaque.png", PhotoReader())
    expected = samples if colour else samples[..., 0]
    assert opaque.array.dtype == np.uint16 and np.array_equal(opaque.array[0], expected)
    assert not opaque.warnings
    assert any("alpha" in w for w in load_one(tmp_path / "clear.png", PhotoReader()).warnings)


@pytest.mark.parametrize("cut", ["idat", "rows"])
def test_corrupt_16_bit_rgb_png_names_the_file(tmp_path, cut):
    image = np.random.default_rng(7).integers(0, 65536, (11, 9, 3)).astype(np.uint16)
    _png16(tmp_path / "full.png", image)
    data = (tmp_path / "full.png").read_bytes()
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    body = data[idat + 4:idat + 4 + length]
    if cut == "idat":  # the compressed stream is garbage
        body = bytes(b ^ 0x5A for b in body)
    else:  # a valid stream that holds only some of the rows
        body = zlib.compress(zlib.decompress(body)[: 4 * (9 * 6 + 1)])
    chunk = struct.pack(">I", len(body)) + b"IDAT" + body + struct.pack(">I", zlib.crc32(b"IDAT" + body))
    (tmp_path / "bad16.png").write_bytes(data[:idat - 4] + chunk + data[idat + 8 + length:])
    with pytest.raises(InputError, match="cannot read image: ") as err:
        read_volume(tmp_path / "bad16.png")
    assert "bad16.png" in str(err.value)


def test_palette_and_cmyk_become_rgb(tmp_path):
    Image.fromarray(_rgb()).convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "palette.png")
    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(_rgb()).convert("CMYK").save(tmp_path / "cmyk.tif")
    for name in ("palette.png", "cmyk.jpg", "cmyk.tif"):
        volume = load_one(tmp_path / name, PhotoReader())
        assert volume.array.shape == (1, 12, 17, 3) and volume.array.dtype == np.uint8, name


def test_jpeg_and_tiff_rgb(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.jpg", quality=95)
    tifffile.imwrite(tmp_path / "a.tif", _rgb(), photometric="rgb")
    assert load_one(tmp_path / "a.jpg", PhotoReader()).array.shape == (1, 12, 17, 3)
    assert np.array_equal(load_one(tmp_path / "a.tif", PhotoReader()).array[0], _rgb())


def test_16_bit_tiffs(tmp_path):
    rgb16 = (_rgb().astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb16, photometric="rgb")
    grey16 = rgb16[..., 0]
    tifffile.imwrite(tmp_path / "grey16.tif", grey16, photometric="minisblack")
    volume = load_one(tmp_path / "rgb16.tif", PhotoReader())
    assert volume.array.dtype == np.uint16 and np.array_equal(volume.array[0], rgb16)
    grey = load_one(tmp_path / "grey16.tif", PhotoReader())
    assert grey.array.dtype == np.uint16 and grey.array.shape == (1, 12, 17)


def test_multi_page_tiff_is_a_stack(tmp_path):
    stack = np.random.default_rng(3).integers(0, 4000, (5, 12, 17)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    items = PhotoReader().examine(tmp_path / "stack.tif")
    assert items[0].n_slices == 5
    volume = items[0].load()
    assert volume.array.shape == (5, 12, 17) and np.array_equal(volume.array, stack)


@pytest.mark.parametrize("name, content", [
    ("text.png", b"this is a text file, not a picture\n" * 5),
    ("empty.png", b""),
    ("empty.npy", b""),
    ("cut.png", None),
    ("cut.jpg", None),
])
def test_bad_photos_name_the_file(tmp_path, name, content):
    path = tmp_path / name
    if content is None:
        full = tmp_path / f"full{path.suffix}"
        Image.fromarray(np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(full)
        content = full.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(InputError) as err:
        read_volume(path)
    assert name in str(err.value)


def test_real_thin_section(shared_data):
    volume = read_volume(shared_data / "thin_sections" / "images" / "1.png")
    assert volume.is_rgb and volume.array.dtype == np.uint8 and volume.shape[0] == 1
    labels = read_volume(shared_data / "thin_sections" / "labels" / "1.png")
    assert labels.array.ndim == 3 and set(np.unique(labels.array).tolist()) <= {1, 2, 3, 4, 5}


# -- writing what was read ---------------------------------------------------------------------
def test_photo_and_label_png_round_trip(tmp_path):
    photo = Volume(_rgb()[None], modality="XC", name="x")
    back = load_one(write_volume(photo, tmp_path / "copy.png"), PhotoReader())
    assert np.array_equal(back.array, photo.array)
    index = Volume(np.arange(12 * 17, dtype=np.uint16).reshape(1, 12, 17) * 300)
    back = load_one(write_volume(index, tmp_path / "index.png"), PhotoReader())
    assert back.array.dtype == np.uint16 and np.array_equal(back.array, index.array)
    with pytest.raises(InputError, match="PNG holds one slice"):
        write_volume(Volume(np.zeros((2, 3, 3), np.uint8)), tmp_path / "two.png")


def test_npy_writer_writes_sidecar(tmp_path):
    volume = Volume(np.zeros((2, 3, 4), np.int16), spacing=(3, 2, 1), origin=(4, 5, 6), modality="CT")
    path = write_volume(volume, tmp_path / "v.npy")
    assert json.loads((tmp_path / "v.json").read_text())["spacing"] == [3.0, 2.0, 1.0]
    back = load_one(path, NumpyReader())
    assert back.same_grid(volume) and back.modality == "CT" and back.array.dtype == np.int16
