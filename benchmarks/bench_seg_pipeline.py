"""Segmentation training input pipeline: is the model, not data loading, the bottleneck?

Figure to reach (issue 5): making a training batch costs under 10 % of a training step. For each
shipped segmentation config (``models/configs/liver_unet2d.toml``: batches of 8 slices of 128²;
``spine_unet3d.toml``: batches of 2 patches of 32×64×64; augmentation on, as configured) this
measures, on the task's own ``load_data`` (a few synthetic torsos instead of the config's 40/24):

- data: one batch from the training ``PyDataset`` (random study, crop, ``augment_pair``), with the
  share of it spent cropping and augmenting;
- step: one ``model.train_on_batch`` of the network the config builds, on batches made beforehand;
- share = data / (data + step), PASS under 10 %;
- stall: what training really loses to data. ``ctviewer.ml.training.fit`` hands the PyDataset to
  ``Model.fit`` (workers=1, no multiprocessing: on TensorFlow Keras wraps it in ``tf.data`` with
  prefetching, so the next batch is made while the step runs). Timed as an epoch of ``fit`` over
  the real PyDataset against one over the same batches held in memory (the quicker of epochs 2
  and 3 each: the first builds the pipeline).

    .venv/bin/python benchmarks/bench_seg_pipeline.py [--steps 6] [--studies 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from ctviewer.ml.training import TrainConfig  # noqa: E402
from results import Report  # noqa: E402  (benchmarks/, the script's own folder)

CONFIGS = {2: REPO / "models/configs/liver_unet2d.toml", 3: REPO / "models/configs/spine_unet3d.toml"}


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def small_config(dims: int, studies: int, steps: int) -> TrainConfig:
    """The shipped config with fewer synthetic studies and samples: the same sizes, batch and augmentation."""
    config = TrainConfig.from_toml(CONFIGS[dims])
    return dataclasses.replace(config, data={**config.data, "synthetic": studies, "synthetic_test": 0, "real_test": []},
                               extra={**config.extra, "samples_per_epoch": steps * config.batch_size,
                                      "val_samples": 2},
                               log_dir=None, patience=0)


def sample_parts(dims: int, config: TrainConfig, studies: int, repeats: int) -> tuple[float, float]:
    """Seconds per sample for the crop (make_sample) and for augment_pair, on prepared studies."""
    from ctviewer.ml.augmentation import AugmentSpec, augment_pair
    from ctviewer.workflows.segmentation import task
    from ctviewer.workflows.segmentation.prepare import prepare

    data = task.SegData.from_config(config, dims)
    prepared = [prepare(task.synthetic_case(s), data.target, data.window, data.working_spacing)
                for s in range(min(studies, 2))]
    size = (data.slice_size,) * 2 if dims == 2 else data.patch
    rng = np.random.default_rng(1)
    pairs = []
    crop = median_time(lambda: pairs.append(task.make_sample(prepared[len(pairs) % len(prepared)], dims, size, rng,
                                                             0.7)), repeats)
    spec = AugmentSpec()
    augment = median_time(lambda: augment_pair(*pairs[int(rng.integers(len(pairs)))], rng, spec, spatial_dims=dims),
                          repeats)
    return crop, augment


def bench(dims: int, studies: int, steps: int) -> dict:
    from ctviewer.ml.backend import keras
    from ctviewer.ml.tasks import get_task

    k = keras()
    config = small_config(dims, studies, steps)
    task = get_task(config.task)
    t0 = time.perf_counter()
    train, _, info = task.load_data(config)
    load_s = time.perf_counter() - t0
    model = task.build_model(config)

    train[0]  # first call: imports, caches
    index = iter(range(1, 10 ** 6))
    data_s = median_time(lambda: train[next(index) % len(train)], 2 * steps)
    batches = [train[i] for i in range(steps)]
    model.train_on_batch(*batches[0])  # traces the step
    index = iter(range(10 ** 6))
    step_s = median_time(lambda: model.train_on_batch(*batches[next(index) % steps]), steps)
    crop_s, augment_s = sample_parts(dims, config, studies, 3 * config.batch_size)

    class InMemory(k.utils.PyDataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    class EpochClock(k.callbacks.Callback):
        seconds: list = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            if epoch > 0:  # the first epoch builds the tf.data pipeline and its signature
                self.seconds.append(time.perf_counter() - self.start)

    def per_step(data) -> float:  # the quicker of epochs 2 and 3: less noise from the machine's other work
        clock = EpochClock()
        clock.seconds = []
        model.fit(data, epochs=3, verbose=0, callbacks=[clock])
        return min(clock.seconds) / steps

    memory_s = per_step(InMemory())
    real_s = per_step(train)
    return {"dims": dims, "batch": config.batch_size, "size": train[0][0].shape[1:-1], "load_s": load_s,
            "data_s": data_s, "step_s": step_s, "crop_s": crop_s * config.batch_size,
            "augment_s": augment_s * config.batch_size, "fit_memory_s": memory_s, "fit_real_s": real_s,
            "workers": train.workers, "multiprocessing": train.use_multiprocessing,
            "studies": info["train_studies"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="batches timed per measurement")
    parser.add_argument("--studies", type=int, default=3, help="synthetic torsos per task (one goes to validation)")
    parser.add_argument("--only", choices=("2d", "3d"))
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from ctviewer.ml.backend import backend_name

    rows = [bench(d, args.studies, args.steps) for d in (2, 3) if args.only in (None, f"{d}d")]
    load = os.getloadavg()[0]
    out = Report(__file__, "Segmentation training input pipeline")
    out(f"{os.cpu_count()} CPUs, load average {load:.1f}, Keras backend {backend_name()}; medians of "
        f"{args.steps}+ batches")
    out()
    out("| task | batch | data / batch (crop + augment) | step (train_on_batch) | data / step | share "
        "| fit s/step: in memory / real PyDataset | stall | target share < 10 % |")
    out("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        share = r["data_s"] / (r["data_s"] + r["step_s"])
        stall = max(0.0, r["fit_real_s"] - r["fit_memory_s"]) / r["fit_real_s"]
        size = "×".join(str(n) for n in r["size"])
        out(f"| segmentation_{r['dims']}d | {r['batch']} × {size} | {1000 * r['data_s']:.0f} ms "
            f"({1000 * r['crop_s']:.0f} + {1000 * r['augment_s']:.0f}) | {1000 * r['step_s']:.0f} ms "
            f"| {100 * r['data_s'] / r['step_s']:.1f} % | {100 * share:.1f} % "
            f"| {1000 * r['fit_memory_s']:.0f} / {1000 * r['fit_real_s']:.0f} ms | {100 * stall:.1f} % "
            f"| {'PASS' if share < 0.10 else 'FAIL'} |")
        out.passed.append(share < 0.10)
    for r in rows:
        out(f"segmentation_{r['dims']}d: PyDataset workers={r['workers']}, "
            f"use_multiprocessing={r['multiprocessing']}; load_data ({r['studies']} training studies) "
            f"{r['load_s']:.1f} s")
    out()
    out.save(not args.no_record, markdown=True)


if __name__ == "__main__":
    main()
