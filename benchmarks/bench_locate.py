"""Locating L3 and T12, and every level, in a loaded 512×512×400 CT.

Figures to reach: under 1 s on this 2-core CPU for projection + inference of L3 and T12 (issue 4),
and under 1 s for every level T1…S1 — the network's picks cross-checked with the vertebra count
(``locate_and_count``, issue 15). The reference
measured in the same run is the bare numpy maximum projection of the same volume along the rows
(``array.max(axis=1)``): the least any frontal MIP must cost, so the ratio travels across machines.

The scan is a synthetic torso (512×512, 0.8 mm pixels, 400 slices of 1.25 mm) generated once into
``$TMPDIR/ctviewer-bench/``. The model is the shipped ``slice_locator`` when present; otherwise an
untrained network of the same architecture, which takes the same time (said in the output).

    .venv/bin/python benchmarks/bench_locate.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

import numpy as np  # noqa: E402

from ctviewer.data.volume import Volume  # noqa: E402
from ctviewer.workflows.slice_locator.locate import locate, locate_and_count  # noqa: E402
from ctviewer.workflows.slice_locator.picks import KNOWN_LEVELS  # noqa: E402
from ctviewer.workflows.slice_locator.projections import make_projections  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "ctviewer-bench" / "torso512x400.npz"


def scan() -> Volume:
    if not CACHE.is_file():
        from ctviewer.synth import TorsoParams, make_torso

        CACHE.parent.mkdir(parents=True, exist_ok=True)
        t = make_torso(TorsoParams.random(5, matrix=(512, 512), pixel_spacing=0.8, slice_spacing=1.25,
                                          fov_mm=(-60, 440)))
        np.savez(CACHE, array=t.image.array, spacing=t.image.spacing, origin=t.image.origin,
                 levels=np.array([t.levels["L3"].z_mm, t.levels["T12"].z_mm]))
    d = np.load(CACHE)
    return Volume(d["array"], spacing=tuple(d["spacing"]), origin=tuple(d["origin"]), modality="CT",
                  name="synthetic torso 512x512x400")


def locator():
    from ctviewer.ml.locator import Locator
    from ctviewer.ml.registry import SHIPPED_DIR

    if (SHIPPED_DIR / "slice_locator.keras").is_file():
        return Locator.load(), "shipped slice_locator"
    from ctviewer.ml.cards import ModelCard
    from ctviewer.ml.locator import build_locator

    card = ModelCard(name="untrained", task="slice_locator", outputs={"levels": ["L3", "T12"]})
    return Locator(build_locator(), card), "untrained network of the same architecture"


def best(fn, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    vol = scan()
    loc, which = locator()
    locate(vol, loc)  # warm-up: the first call traces the network
    reference = best(lambda: vol.array.max(axis=1))
    projection = best(lambda: make_projections(vol))
    p = make_projections(vol)
    inference = best(lambda: loc.heatmaps(p))
    total = best(lambda: locate(vol, loc))
    every = best(lambda: locate_and_count(vol, loc, levels=KNOWN_LEVELS), repeats=3)
    picks, _, spine = locate_and_count(vol, loc, levels=KNOWN_LEVELS)
    placed = sum(p.slice_index is not None for p in picks)
    out = Report(__file__, "Locating L3 and T12")
    out(f"{vol.name}: {vol.shape[0]} slices of {vol.shape[1]}x{vol.shape[2]}, model: {which}, "
        f"{os.cpu_count()} CPUs")
    out(f"  reference numpy max over rows      {reference * 1000:7.0f} ms   1.0x")
    out(f"  projections (mask, 2 MIPs, 1 mm)   {projection * 1000:7.0f} ms   {projection / reference:.1f}x")
    out(f"  network inference ({p.rows} rows)     {inference * 1000:7.0f} ms   {inference / reference:.1f}x")
    out(f"  locate L3 + T12 (all of it)        {total * 1000:7.0f} ms   {total / reference:.1f}x")
    out(f"  every level T1..S1 (network + count) {every * 1000:5.0f} ms   {every / reference:.1f}x"
        f"   ({placed} of {len(KNOWN_LEVELS)} levels placed)")
    out.verdict("L3 + T12 under 1000 ms", total < 1.0, f"{total * 1000:.0f} ms")
    out.verdict("every level under 1000 ms", every < 1.0, f"{every * 1000:.0f} ms")
    out.save("--no-record" not in sys.argv)


if __name__ == "__main__":
    main()
