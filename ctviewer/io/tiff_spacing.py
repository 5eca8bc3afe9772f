"""The voxel size of a TIFF volume, from what ImageJ and the TIFF tags say, or from the sidecar.

Only volumes use this: a thin-section photo's DPI is the scanner's or camera software's idea of a
print size, not the size of anything in the rock, and photos keep their pixels as the unit.

Where the size comes from, first found wins:

1. the JSON sidecar beside the file or folder (``NAME.json`` with ``"spacing": [z, y, x]`` in mm):
   the user wrote it, or the app wrote it when it asked, so it overrides tags that may be wrong;
2. XResolution / YResolution (pixels per unit) with ResolutionUnit, or, where the unit is
   "none", the unit ImageJ names in its description; the slice step from ImageJ's ``spacing``.
   Without a slice step the voxels are taken as cubic (micro-CT reconstructions are; ImageJ's
   image-sequence import does the same) and the user is told;
3. for a folder of slices, the reconstruction log a Bruker/SkyScan scanner writes beside them;
4. otherwise unknown: 1 mm with ``meta['spacing_unknown']``, which the app turns into its
   "ask once, keep it in a sidecar" question, as for ``.npy`` cubes.

72 and 96 pixels per inch are what image software writes when it knows no size (screen defaults),
so they are not taken as a voxel size.
"""

from __future__ import annotations

from pathlib import Path

from ctviewer.io.label_files import base_name

#: Millimetres per unit as ImageJ and TIFF writers spell them.
MM_PER_UNIT = {
    "nm": 1e-6, "nanometer": 1e-6, "nanometre": 1e-6,
    "um": 1e-3, "µm": 1e-3, "μm": 1e-3, "\\u00b5m": 1e-3, "micron": 1e-3, "microns": 1e-3,
    "micrometer": 1e-3, "micrometre": 1e-3,
    "mm": 1.0, "millimeter": 1.0, "millimetre": 1.0,
    "cm": 10.0, "centimeter": 10.0, "centimetre": 10.0,
    "m": 1000.0, "meter": 1000.0, "metre": 1000.0,
    "inch": 25.4, "in": 25.4,
}
#: TIFF ResolutionUnit codes (2 and 3 are the standard's, 4 and 5 tifffile's extension).
_RESUNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}
_SCREEN_DPI = (72.0, 96.0)


def mm_per_unit(unit) -> float | None:
    return MM_PER_UNIT.get(str(unit).strip().lower()) if unit else None


def tag_spacing(page, imagej: dict | None) -> tuple[float | None, float | None, float | None]:
    """(z, y, x) in mm from a tifffile page and the file's ImageJ metadata; None where not said."""
    imagej = imagej or {}
    unit_mm = mm_per_unit(imagej.get("unit"))
    y = x = None
    if "XResolution" in page.tags and "YResolution" in page.tags:
        code = int(page.resolutionunit)
        per = _RESUNIT_MM.get(code, unit_mm if code == 1 else None)
        xres, yres = (float(r) for r in page.resolution)
        screen = code == 2 and xres in _SCREEN_DPI and yres in _SCREEN_DPI
        if per and xres > 0 and yres > 0 and not screen and not (code == 1 and xres == yres == 1 and not unit_mm):
            x, y = per / xres, per / yres
    z = None
    step = imagej.get("spacing")
    if unit_mm and isinstance(step, (int, float)) and step > 0:
        z = float(step) * unit_mm
    return z, y, x


def scanner_log_spacing(folder: Path) -> tuple[float, str] | None:
    """(voxel size in mm, log name) from the reconstruction log Bruker/SkyScan NRecon writes beside its
    slices (``NAME_rec.log``): ``Pixel Size (um)=`` in the ``[Reconstruction]`` section (after binning;
    its voxels are cubic). None where no log says it."""
    for log in sorted(p for p in folder.iterdir() if p.suffix.lower() == ".log" and p.is_file()):
        if log.stat().st_size > 1 << 20:
            continue  # not a reconstruction log
        section = ""
        for line in log.read_text(encoding="latin-1").splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip().lower()
            elif section == "reconstruction" and line.lower().startswith("pixel size (um)="):
                try:
                    size = float(line.split("=", 1)[1])
                except ValueError:
                    continue
                if size > 0:
                    return size / 1000, log.name
    return None


def volume_spacing(source: Path, said: tuple[float | None, float | None, float | None],
                   warnings: list[str], said_by: str = "the TIFF tags") -> tuple[dict, str]:
    """(Volume keyword arguments, where the spacing came from: 'sidecar NAME.json', ``said_by`` or
    'unknown') for the volume read from ``source`` (a file or a folder of slices) given what its tags
    ``said``; what the user must know goes to ``warnings``."""
    from ctviewer.io.label_files import json_sidecar
    from ctviewer.io.numpy_io import geometry_from_sidecar

    name = base_name(source)
    kwargs = geometry_from_sidecar(source, name, [])
    z, y, x = said
    if "spacing" in kwargs:
        if x is not None and y is not None and not _close(kwargs["spacing"][1:], (y, x)):
            warnings.append(f"the sidecar's spacing {_mm(kwargs['spacing'])} mm is used; {said_by} say "
                            f"{_mm((z or x, y, x))} mm")
        return kwargs, f"sidecar {json_sidecar(source).name}"
    if x is None or y is None:
        warnings.append(f"spacing unknown: the files do not say their voxel size; assumed 1 mm "
                        f"(add {name}.json beside it with \"spacing\": [z, y, x] in mm)")
        return kwargs, "unknown"
    if z is None:
        z = x
        warnings.append(f"slice step not in the files: voxels taken as cubic, {x:g} mm (add {name}.json "
                        "beside it with \"spacing\": [z, y, x] in mm if they are not)")
    kwargs["spacing"] = (z, y, x)
    return kwargs, said_by


def _close(a, b) -> bool:
    return all(abs(p - q) <= 0.01 * max(abs(p), abs(q)) for p, q in zip(a, b))


def _mm(spacing) -> str:
    return " x ".join(f"{s:g}" for s in spacing)
