"""Render the synthetic scans a slice-locator training config asks for, ahead of training.

``ctviewer train`` renders missing scans itself; this script does it beforehand (e.g. while you
write the rest of a config), with a text progress line. Usage:

    python scripts/make_locator_data.py models/configs/slice_locator.toml [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ctviewer.ml.training import TrainConfig  # noqa: E402
from ctviewer.workflows.slice_locator import dataset  # noqa: E402
from ctviewer.workflows.slice_locator.task import LocatorData  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    config = TrainConfig.from_toml(args.config)
    data = LocatorData.from_config(config)
    started = time.monotonic()

    def progress(fraction: float, message: str = "") -> None:
        print(f"\r{fraction:6.1%} {message} ({time.monotonic() - started:.0f} s)", end="", flush=True)

    seeds = list(data.train_seeds()) + list(data.test_seeds())
    dataset.synthetic_samples(seeds, data.cache_dir, data.levels, workers=args.workers, progress=progress)
    print(f"\n{len(seeds)} synthetic scans in {dataset.synthetic_folder(data.cache_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
