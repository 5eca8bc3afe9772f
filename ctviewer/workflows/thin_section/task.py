"""The ``thin_section`` training task: a VGG-UNet (``ctviewer.ml.vgg_unet``) on photos and their labels.

A config's ``[data]`` table:

    sources = ["../../../shared/data/thin_sections"]   # anything find_pairs reads (folders, list files)
    test = ["8", "9"]          # photo stems held out for the card's figures: never trained or validated on
    validation = ["7"]         # stems for validation (else validation_fraction of the other photos;
                               # false: none, every photo but the test ones trains, the last epoch is kept)
    classes = [1, 2, 3, 4, 5]  # label ids the network predicts (default: the ids in the training labels)
    crop = [256, 256]          # training crop [height, width], multiples of 16
    label_rule = { thresholds = [0.25, 0.4, 0.6, 0.8], sigma = 1.0 }   # labels are gray bins of the
                               # photo: augmented crops are relabelled by this rule (checked against
                               # the label files first)

and ``[extra]``: ``base_filters`` (64 = VGG16's width), ``dice_weight``, ``samples_per_epoch``,
``val_samples``, ``colour_jitter`` (a number for all four, or a table of brightness, contrast,
saturation, hue), ``photo_variation`` (``true`` or a table of exposure, uneven_light,
white_balance, saturation, focus, magnification, noise: ``variation.PhotoVariation``; instead of
colour_jitter), ``encoder_weights`` (a local VGG16 no-top weights file), ``dropout``, ``tile``
(the prediction tile written to the card).

Photos are split by photo: the test photos are set aside first, and validation is drawn only from
the rest (the seed validated on its test set). Training samples are random crops with flips, 90°
rotations and a small colour jitter, or with ``photo_variation`` the changes real photomicrographs
show (labels recomputed by the label rule where they are gray bins); unlabelled pixels (id 0) do not count in the loss, so partly
labelled photos train. The card's metrics are per-class IoU, mean IoU and pixel accuracy on each
held-out photo and over all of them, predicted at full resolution with overlapping tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctviewer.errors import InputError
from ctviewer.ml.tasks import TaskSpec
from ctviewer.progress import no_progress
from ctviewer.workflows.thin_section.jitter import ColourJitter
from ctviewer.workflows.thin_section.variation import LabelRule, PhotoVariation

SIZE_MULTIPLE = 16          # ctviewer.ml.vgg_unet.SIZE_MULTIPLE (not imported: that module starts Keras)
UNLABELLED = 255            # ctviewer.ml.vgg_unet.UNLABELLED: the target of pixels with label id 0
DATA_KEYS = {"sources", "test", "validation", "classes", "crop", "label_rule"}
EXTRA_KEYS = {"base_filters", "dice_weight", "samples_per_epoch", "val_samples", "colour_jitter",
              "photo_variation", "encoder_weights", "dropout", "tile"}
#: Least share of a photo's labelled pixels a label_rule must reproduce to be trusted with relabelling.
RULE_AGREEMENT = 0.995


@dataclass
class ThinData:
    """The ``[data]`` and ``[extra]`` settings of a thin_section config, checked."""

    sources: list[Path]
    test: list[str] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    validate: bool = True      # false: no validation photos at all ([data] validation = false)
    classes: list[int] | None = None
    crop: tuple[int, int] = (256, 256)
    base_filters: int = 64
    dice_weight: float = 0.0
    samples_per_epoch: int = 256
    val_samples: int = 32
    jitter: ColourJitter = field(default_factory=ColourJitter)
    variation: PhotoVariation | None = None
    label_rule: LabelRule | None = None
    encoder_weights: Path | None = None
    dropout: float = 0.0
    tile: int = 512

    @classmethod
    def from_config(cls, config) -> "ThinData":
        d, x = dict(config.data), dict(config.extra)
        config.check_keys(DATA_KEYS, EXTRA_KEYS)
        sources = [config.resolve(p) for p in _as_list(d.get("sources"))]
        if not sources:
            raise InputError("the config names no training photos: set data.sources (a folder or a list file)")
        validate = d.get("validation") is not False
        out = cls(sources=sources, test=[str(s) for s in _as_list(d.get("test"))], validate=validate,
                  validation=[str(s) for s in _as_list(d.get("validation"))] if validate else [])
        if d.get("classes") is not None:
            classes = sorted({int(c) for c in _as_list(d["classes"])})
            if len(classes) < 2 or not all(0 < c < 255 for c in classes):
                raise InputError(f"key 'classes' should list at least two label ids between 1 and 254, "
                                 f"not {d['classes']!r}")
            out.classes = classes
        crop = tuple(int(v) for v in _as_list(d.get("crop", out.crop)))
        if len(crop) != 2 or any(v < SIZE_MULTIPLE or v % SIZE_MULTIPLE for v in crop):
            raise InputError(f"key 'crop' should be [height, width], multiples of {SIZE_MULTIPLE}, not {d['crop']!r}")
        out.crop = crop
        for key, low in (("base_filters", 1), ("samples_per_epoch", 1), ("val_samples", 1), ("tile", SIZE_MULTIPLE)):
            value = x.get(key, getattr(out, key))
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"key '{key}' should be a whole number, at least {low}, not {value!r}")
            setattr(out, key, value)
        out.dice_weight, out.dropout = float(x.get("dice_weight", 0.0)), float(x.get("dropout", 0.0))
        if "colour_jitter" in x and x.get("photo_variation"):
            raise InputError("set colour_jitter or photo_variation, not both (photo_variation changes the colours "
                             "as photomicrographs differ)")
        out.jitter = ColourJitter.from_config(x.get("colour_jitter", out.jitter))
        out.variation = PhotoVariation.from_config(x.get("photo_variation"))
        out.label_rule = LabelRule.from_config(d.get("label_rule"))
        if x.get("encoder_weights"):
            out.encoder_weights = config.resolve(x["encoder_weights"])
        return out


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


# -- photos -------------------------------------------------------------------------------------------

@dataclass
class Photo:
    name: str            # the photo's file stem
    image_path: Path
    label_path: Path
    rgb: np.ndarray | None = None      # [y, x, 3] uint8
    ids: np.ndarray | None = None      # [y, x] uint8 label ids, 0 = unlabelled


@dataclass
class Plan:
    """Which photo goes where, and the classes the network learns."""

    train: list[Photo]
    validation: list[Photo]
    test: list[Photo]
    classes: list[int]
    table: object        # LabelTable: names and colours of the classes


def find_photos(data: ThinData) -> list[Photo]:
    from ctviewer.workflows.thin_section.project import find_pairs

    photos, seen = [], {}
    for source in data.sources:
        for image, labels in find_pairs(source):
            name = Path(image).stem
            if name in seen:
                raise InputError(f"two photos are named '{name}' ({seen[name]} and {image}): the test and "
                                 f"validation lists name photos by file stem, so stems must be unique", image)
            seen[name] = image
            photos.append(Photo(name, Path(image), Path(labels)))
    return photos


def split_photos(photos: list[Photo], data: ThinData, validation_fraction: float, seed: int):
    """(train, validation, test): test photos first, validation never among them."""
    from ctviewer.ml.datasets import split_by_study

    by_name = {p.name: p for p in photos}
    where = ", ".join(str(s) for s in data.sources)
    for key, names in (("test", data.test), ("validation", data.validation)):
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"[data] {key} names photo(s) {', '.join(missing)} not found in {where} "
                             f"(photos: {', '.join(sorted(by_name))})")
    if both := sorted(set(data.test) & set(data.validation)):
        raise InputError(f"photo(s) {', '.join(both)} are both test and validation photos; a test photo must "
                         f"stay unseen until the end")
    rest = [n for n in by_name if n not in data.test]
    if not data.validate or data.validation:
        val = list(data.validation)
    else:
        _, val = split_by_study(rest, validation_fraction, seed)
    train = [n for n in rest if n not in val]
    if not train:
        raise InputError(f"no photo is left for training in {where} after the test and validation photos")
    return ([by_name[n] for n in train], [by_name[n] for n in val], [by_name[n] for n in data.test])


def class_table(sources):
    """Names and colours: a project's own table where a source folder has a project file, else the
    thin-section table."""
    from ctviewer.imaging.bins import thin_section_table
    from ctviewer.workflows.thin_section.project import PROJECT_FILE, ThinSectionProject

    for source in sources:
        if Path(source).is_dir() and (Path(source) / PROJECT_FILE).is_file():
            return ThinSectionProject.open(source).table
    return thin_section_table()


def read_photo(photo: Photo, table, cancel=None) -> Photo:
    from ctviewer.workflows.thin_section.photos import read_label_image, read_photo_rgb

    if cancel is not None:
        cancel.raise_if_cancelled()
    photo.rgb = read_photo_rgb(photo.image_path)
    photo.ids = read_label_image(photo.label_path, table)
    if photo.ids.shape != photo.rgb.shape[:2]:
        raise InputError(f"labels are {photo.ids.shape[1]}x{photo.ids.shape[0]} px but the photo "
                         f"{photo.image_path.name} is {photo.rgb.shape[1]}x{photo.rgb.shape[0]}", photo.label_path)
    return photo


def class_index(photo: Photo, classes: list[int]) -> np.ndarray:
    """The photo's labels as training targets: class index, UNLABELLED where the id is 0."""
    lookup = np.full(256, -1, dtype=np.int16)
    lookup[0] = UNLABELLED
    lookup[classes] = np.arange(len(classes))
    index = lookup[photo.ids]
    if np.any(index < 0):
        odd = np.unique(photo.ids[index < 0])
        raise InputError(f"labels hold ids {', '.join(str(v) for v in odd)} that are not among the classes "
                         f"trained ({', '.join(str(c) for c in classes)})", photo.label_path)
    return index.astype(np.uint8)


def plan(config, data: ThinData | None = None, progress=None, cancel=None, read_test: bool = False) -> Plan:
    """Find, split and read the photos (the test photos only with ``read_test``)."""
    progress = progress or no_progress
    data = data or ThinData.from_config(config)
    train, val, test = split_photos(find_photos(data), data, config.validation_fraction, config.seed)
    table = class_table(data.sources)
    wanted = train + val + (test if read_test else [])
    for i, photo in enumerate(wanted):
        progress(i / len(wanted), f"reading {photo.image_path.name}")
        read_photo(photo, table, cancel)
    return Plan(train, val, test, data.classes or _present(train + val), table)


def default_classes(config, data: ThinData) -> list[int]:
    """The ids in the training and validation labels (label images only: the network's size needs
    them before the photos are read)."""
    from ctviewer.workflows.thin_section.photos import read_label_image

    train, val, _ = split_photos(find_photos(data), data, config.validation_fraction, config.seed)
    table = class_table(data.sources)
    for photo in train + val:
        photo.ids = read_label_image(photo.label_path, table)
    return _present(train + val)


def _present(photos) -> list[int]:
    classes = sorted({int(v) for p in photos for v in np.unique(p.ids)} - {0})
    if len(classes) < 2:
        raise InputError(f"the training labels hold {len(classes)} class(es) ({', '.join(map(str, classes))}); "
                         f"a segmentation needs at least two")
    return classes


# -- samples ------------------------------------------------------------------------------------------

def random_crop(rgb, target, size, rng, augment: bool):
    """A ``size`` crop of (photo, target): with ``augment``, turned by a random multiple of 90° (the
    window is cut in the turned shape first, so any crop shape works) and flipped. Photos smaller
    than the crop are padded (black photo, unlabelled target)."""
    turns = int(rng.integers(4)) if augment else 0
    h, w = size if turns % 2 == 0 else size[::-1]
    pad = [(0, max(0, h - rgb.shape[0])), (0, max(0, w - rgb.shape[1]))]
    if pad[0][1] or pad[1][1]:
        rgb = np.pad(rgb, [*pad, (0, 0)])
        target = np.pad(target, pad, constant_values=UNLABELLED)
    y = int(rng.integers(rgb.shape[0] - h + 1))
    x = int(rng.integers(rgb.shape[1] - w + 1))
    rgb, target = rgb[y:y + h, x:x + w], target[y:y + h, x:x + w]
    if augment:
        return _turned(rgb, target, turns, rng)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(target)


def _turned(image, target, turns: int, rng):
    """(image, target) turned by ``turns`` × 90° and, half the time, flipped left to right."""
    image, target = np.rot90(image, turns), np.rot90(target, turns)
    if rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(target)


def varied_crop(rgb, target, size, rng, variation: PhotoVariation, rule: LabelRule | None, classes):
    """A :class:`PhotoVariation` crop, turned by a random multiple of 90° and flipped like
    :func:`random_crop`'s (relabelled by ``rule`` before turning, so the rule's smoothing sees the
    photo as it was taken)."""
    turns = int(rng.integers(4))
    image, target = variation.crop(rgb, target, size if turns % 2 == 0 else size[::-1], rng, rule, classes)
    return _turned(image, target, turns, rng)


def sample_batches(photos, targets, size, batch_size, steps, seed, jitter: ColourJitter | None, augment: bool,
                   fresh_each_epoch: bool = True, variation: PhotoVariation | None = None,
                   rule: LabelRule | None = None, classes=None):
    """Random crops of random photos (chosen in proportion to their labelled pixels); with
    ``variation`` (and ``augment``) each crop varies as photomicrographs do, relabelled by ``rule``."""
    from ctviewer.ml.datasets import sample_batches as batches_of

    weights = np.array([np.count_nonzero(t != UNLABELLED) for t in targets], dtype=np.float64)
    if not weights.sum():
        raise InputError("none of the photos " + ", ".join(p.name for p in photos) + " has a labelled pixel")
    weights /= weights.sum()

    def make_pair(rng, i):
        k = int(rng.choice(len(photos), p=weights))
        if augment and variation is not None:
            return varied_crop(photos[k].rgb, targets[k], size, rng, variation, rule, classes)
        rgb, target = random_crop(photos[k].rgb, targets[k], size, rng, augment)
        image = rgb.astype(np.float32) / 255.0
        if jitter is not None:
            image = jitter.apply(image, rng)
        return image, target

    batches = batches_of(make_pair, batch_size, steps, seed, fresh_each_epoch=fresh_each_epoch)
    batches.memory_hint = f"smaller crops ([data] crop, now {list(size)})"
    return batches


# -- the task's four functions ------------------------------------------------------------------------

def build(config):
    from ctviewer.ml.vgg_unet import build_vgg_unet

    data = ThinData.from_config(config)
    n_classes = len(data.classes) if data.classes else len(default_classes(config, data))
    return build_vgg_unet(n_classes, base_filters=data.base_filters, dice_weight=data.dice_weight,
                          learning_rate=config.learning_rate, encoder_weights=data.encoder_weights,
                          dropout=data.dropout)


def load_data(config, progress=None, cancel=None):
    data = ThinData.from_config(config)
    p = plan(config, data, progress=progress, cancel=cancel)
    augment = bool(config.augmentation)
    jitter = data.jitter if augment and data.jitter.active and data.variation is None else None
    if data.label_rule is not None:
        check_label_rule(data.label_rule, p.train + p.validation, p.classes)
    steps = max(1, data.samples_per_epoch // config.batch_size)
    train = sample_batches(p.train, [class_index(ph, p.classes) for ph in p.train], data.crop, config.batch_size,
                           steps, config.seed, jitter, augment, variation=data.variation, rule=data.label_rule,
                           classes=p.classes)
    val = None   # no validation photos ([data] validation = false): the last epoch is kept
    if p.validation:
        val_steps = max(1, -(-data.val_samples // config.batch_size))
        val = sample_batches(p.validation, [class_index(ph, p.classes) for ph in p.validation], data.crop,
                             config.batch_size, val_steps, [config.seed, 0xFA1], None, False, fresh_each_epoch=False)
    names = (lambda photos: ", ".join(ph.name for ph in photos) or "none")
    description = (f"{len(p.train)} training photos ({names(p.train)}), {len(p.validation)} validation "
                   f"({names(p.validation)}), {len(p.test)} held out for testing ({names(p.test)}) from "
                   f"{', '.join(str(s) for s in data.sources)}; classes {', '.join(str(c) for c in p.classes)}; "
                   f"crops {data.crop[0]}x{data.crop[1]}")
    return train, val, {"description": description, "train_studies": len(p.train),
                        "val_studies": len(p.validation), "train_samples": train.num_samples,
                        "val_samples": val.num_samples if val is not None else 0, "classes": p.classes, "test_photos": len(p.test)}


def check_label_rule(rule: LabelRule, photos, classes) -> None:
    """Refuse a label rule that does not make these photos' labels (relabelling by it would teach
    something else than the label files say), or that makes ids the network does not learn."""
    made = set(range(1, len(rule.thresholds) + 2))
    if not made <= set(classes):
        raise InputError(f"label_rule makes ids {', '.join(map(str, sorted(made)))} but the classes trained are "
                         f"{', '.join(map(str, classes))}")
    for photo in photos:
        share = rule.agreement(photo.rgb, photo.ids)
        if share < RULE_AGREEMENT:
            raise InputError(f"label_rule (thresholds {', '.join(f'{t:g}' for t in rule.thresholds)}, sigma "
                             f"{rule.sigma:g}) gives only {100 * share:.1f} % of these labels (needs "
                             f"{100 * RULE_AGREEMENT:g} %): they are not gray bins of the photo; drop label_rule",
                             photo.label_path)


def evaluate(model, config, info, progress=None, cancel=None):
    """Per-class IoU, mean IoU and pixel accuracy on each held-out photo and over all of them (pixels
    pooled), predicted at full resolution in overlapping tiles, as ``ctviewer thin-section predict`` does.

    Without test photos the validation photos are scored, under a name that says so.
    """
    from ctviewer.workflows.segmentation.segment import keras_predict_fn
    from ctviewer.workflows.thin_section.metrics import confusion_matrix, scores
    from ctviewer.workflows.thin_section.predict import predict_photo

    progress = progress or no_progress
    data = ThinData.from_config(config)
    p = plan(config, data, read_test=True, cancel=cancel)
    classes = info.get("classes") or p.classes
    photos, dataset = (p.test, "test_photos") if p.test else (p.validation, "validation_photos")
    if not photos:
        return {}   # trained on every photo: nothing is left to score (see scripts/train_thin_section_lopo.py)
    ids = np.array(classes, dtype=np.uint8)
    predict_fn = keras_predict_fn(model)
    total = np.zeros((len(classes), len(classes)), dtype=np.int64)
    per_photo = {}
    for i, photo in enumerate(photos):
        class_index(photo, classes)   # labels outside the classes: refused, naming the file
        part = (lambda f, m="", i=i: progress((i + f) / len(photos), f"scoring {photo.name}: {m}"))
        pred = ids[predict_photo(photo.rgb, predict_fn, len(classes), tile=data.tile, progress=part, cancel=cancel)]
        cm = confusion_matrix(pred, photo.ids, classes)
        total += cm
        per_photo[photo.name] = _ordered(scores(cm, classes))
    metrics = {dataset: {**_ordered(scores(total, classes)), "photos": len(photos)}}
    metrics.update({f"photo {name}": values for name, values in per_photo.items()})
    return metrics


def _ordered(values: dict) -> dict:
    """The headline numbers first (one-line listings show the first few), rounded for the card."""
    first = ("mean_iou", "pixel_accuracy")
    return _rounded({**{k: values[k] for k in first}, **{k: v for k, v in values.items() if k not in first}})


def _rounded(values):
    """Scores for JSON: 4 decimals; NaN (a class in neither truth nor prediction) becomes null."""
    if isinstance(values, dict):
        return {str(k): _rounded(v) for k, v in values.items()}
    if isinstance(values, float):
        return round(values, 4) if np.isfinite(values) else None
    return values


def card_fields(config, info):
    from ctviewer.data.labels import default_colour
    from ctviewer.workflows.thin_section.classes import POROSITY_CLASS

    data = ThinData.from_config(config)
    table = class_table(data.sources)
    classes = info.get("classes") or data.classes or []
    out = []
    for c in classes:
        label = table[c] if c in table else None
        out.append({"id": int(c), "name": label.name if label else f"class {c}",
                    "colour": list(label.colour if label else default_colour(c))})
    inputs = {"kind": "rgb_photo", "tile": data.tile, "size_multiple": SIZE_MULTIPLE, "channels": 3,
              "value_range": [0, 1], "crop_trained": list(data.crop),
              "imagenet_encoder": data.encoder_weights is not None}
    return {"description": f"VGG-UNet (base {data.base_filters} filters) segmenting thin-section photos into "
                           f"{len(classes)} classes",
            "inputs": inputs, "outputs": {"classes": out, "porosity_class": POROSITY_CLASS}}


TASK = TaskSpec(name="thin_section",
                description="VGG-UNet segmentation of thin-section photos (grains, epoxy-filled porosity)",
                build_model=build, load_data=load_data, evaluate=evaluate, card_fields=card_fields)
