"""Thin-section prediction at full resolution: one 2000×3000 photo, and a folder of 12 seed-size photos.

Figures to reach (issue 6), on this 2-core CPU: a 2000×3000 photo under 30 s; a folder of twelve
416×608 photos (the seed's size) under 30 s, end to end as ``ctviewer thin-section predict`` runs it
(reading, tiles, class PNG, recoloured PNG, fractions CSV and chart).

References measured in the same run, so the ratios travel across machines: the network's bare
time for the tiles the photo needs (one batch of tiles, best of 3, times the number of batches),
and for the folder one forward pass of a whole 416×608 photo times twelve. The ratio shows what
tiling, blending and the files add.

The network is the config's (``models/configs/thin_section_vggunet.toml``: base_filters 16), or the
shipped ``thin_section_vggunet`` when it exists; untrained weights cost the same time. The photos
are mosaics of the real photos in ``../shared/data/thin_sections`` (mirrored tiles, so no seams),
or random colours where that folder is absent.

    .venv/bin/python benchmarks/bench_thin_section_predict.py [--tile 512] [--batch 4]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

import numpy as np  # noqa: E402

from ctviewer.imaging.bins import thin_section_table  # noqa: E402

SHARED = REPO.parent / "shared" / "data" / "thin_sections" / "images"
CONFIG = REPO / "models" / "configs" / "thin_section_vggunet.toml"
TARGET_S = 30.0


def mosaic(shape) -> tuple[np.ndarray, str]:
    """A photo of ``shape`` (rows, columns) tiled from the real photos, each mirrored to fit its neighbours."""
    from ctviewer.workflows.thin_section.photos import read_photo_rgb

    if not SHARED.is_dir():
        return np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8), "random colours"
    photos = [read_photo_rgb(p) for p in sorted(SHARED.glob("*.png"))]
    h = min(p.shape[0] for p in photos)
    w = min(p.shape[1] for p in photos)
    rows = []
    for r in range(math.ceil(shape[0] / h)):
        row = [photos[(r * 7 + c) % len(photos)][:h, :w] for c in range(math.ceil(shape[1] / w))]
        row = [t[:, ::-1] if c % 2 else t for c, t in enumerate(row)]
        rows.append(np.concatenate(row, axis=1))
        rows[-1] = rows[-1][::-1] if r % 2 else rows[-1]
    return np.ascontiguousarray(np.concatenate(rows)[:shape[0], :shape[1]]), f"mosaic of {len(photos)} real photos"


def model_entry(folder: Path):
    """The shipped thin_section_vggunet, else the config's network untrained, saved with a card in ``folder``."""
    from ctviewer.ml import registry
    from ctviewer.ml.cards import ModelCard

    shipped = [e for e in registry.list_models("thin_section") if e.shipped]
    if shipped:
        return shipped[0], f"shipped {shipped[0].name}"
    from ctviewer.ml.vgg_unet import build_vgg_unet

    base = 16
    if CONFIG.is_file():
        base = int(tomllib.loads(CONFIG.read_text()).get("extra", {}).get("base_filters", base))
    classes = [{"id": lab.id, "name": lab.name, "colour": list(lab.colour)} for lab in thin_section_table()]
    card = ModelCard(name="bench_vggunet", task="thin_section", inputs={"kind": "rgb_photo"},
                     outputs={"classes": classes})
    return registry.save_model(build_vgg_unet(len(classes), base_filters=base), card, folder), \
        f"untrained VGG-UNet, base_filters {base}"


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def best(fn, repeats=3) -> float:
    return min(timed(fn)[1] for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ctviewer-bench-thin-"))
    os.environ["CTVIEWER_MODELS_DIR"] = str(work / "models")

    from ctviewer.workflows.segmentation.inference import _starts
    from ctviewer.workflows.thin_section import predict
    from ctviewer.workflows.thin_section.photos import write_rgb_png

    entry, which = model_entry(work / "models")
    tile_fn, _ = predict._load(entry)   # the same traced network segment_photo uses

    big, source = mosaic((2000, 3000))
    tiles = len(_starts(2000, args.tile, 64 / args.tile)) * len(_starts(3000, args.tile, 64 / args.tile))
    batch = np.random.default_rng(1).random((args.batch, args.tile, args.tile, 3), dtype=np.float32)
    _, first = timed(lambda: tile_fn(batch))
    per_batch = best(lambda: tile_fn(batch))
    reference = per_batch * math.ceil(tiles / args.batch)
    ids, total = timed(lambda: predict.segment_photo(big, entry, tile=args.tile, batch_size=args.batch))
    out = Report(__file__, "Thin-section prediction at full resolution")
    out(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; model: {which}; photos: {source}")
    out(f"2000x3000 photo, tiles {args.tile} (overlap 64), batches of {args.batch}: {tiles} tiles")
    out(f"  reference: network alone on {tiles} tiles   {reference:7.2f} s    1.0x   "
        f"(one batch {per_batch:.2f} s; first call, tracing: {first:.2f} s)")
    out(f"  segment_photo, all of it                 {total:7.2f} s   {total / reference:5.2f}x   "
        f"(classes found: {', '.join(str(i) for i in np.unique(ids))})")
    out.verdict(f"one 2000x3000 photo under {TARGET_S:.0f} s", total < TARGET_S, f"{total:.1f} s")

    folder = work / "seed_size"
    folder.mkdir()
    for n in range(12):
        y, x = (n % 4) * 400, (n // 4) * 700
        write_rgb_png(big[y:y + 416, x:x + 608], folder / f"{n + 1:02d}.png")
    whole = np.random.default_rng(2).random((1, 416, 608, 3), dtype=np.float32)
    _, first_whole = timed(lambda: tile_fn(whole))
    reference = best(lambda: tile_fn(whole)) * 12
    result, total = timed(lambda: predict.predict_folder(folder, work / "out", entry, tile=args.tile))
    out(f"folder of 12 photos of 416x608 (one tile each), all outputs written: {len(result)} predicted")
    out(f"  reference: network alone, 12 x one photo  {reference:7.2f} s    1.0x   "
        f"(first call at this size, tracing: {first_whole:.2f} s)")
    out(f"  predict_folder, all of it                {total:7.2f} s   {total / reference:5.2f}x")
    out.verdict(f"12 photos under {TARGET_S:.0f} s", total < TARGET_S, f"{total:.1f} s")
    out.save(not args.no_record)


if __name__ == "__main__":
    main()
