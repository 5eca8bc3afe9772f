"""Model cards: the JSON file saved beside each ``NAME.keras`` that says what the model is for.

A card names the task the model was trained for, how it did on real data (``real_data``: per scan or
photo, first, because that is what a user's data is) and where it must not be trusted
(``do_not_trust``), what it expects as input (size, spacing, windowing), what it outputs (classes or
levels, threshold), how it was trained (data, epochs, batch size, device, ...) and how well it did on
held-out data. The registry refuses to load a
model without a card, for another task, or with a card from a newer ctviewer.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ctviewer.errors import InputError
from ctviewer.io.atomic import atomic_write_text

#: Bump when a card or the model layout changes so that an older ctviewer would misread it.
FORMAT_VERSION = 1

_REQUIRED = ("name", "task")
_TEXT = ("name", "task", "created", "description", "notes")
_TABLES = ("real_data", "inputs", "outputs", "training", "metrics", "extra")
#: Fields the tasks read as numbers: a card with text there would fail deep inside a run.
_NUMBERS = {"outputs": ("threshold",),
            "inputs": ("width_px", "row_multiple", "min_rows", "dims", "multiple", "overlap", "tile",
                       "spacing_mm", "patch", "window_hu")}


@dataclass
class ModelCard:
    name: str
    task: str
    version: str = "1"
    created: str = ""               # ISO date (YYYY-MM-DD)
    format_version: int = FORMAT_VERSION
    description: str = ""
    #: Figures on real data, per scan or photo: {"summary": one line, "measured": how and when,
    #: "sources": [credits],
    #: "cases": [{"case", "role" (held out / trained on / ...), "figures": {name: value}, "remark"}]}.
    real_data: dict = field(default_factory=dict)
    #: Where the model's answer must not be taken as it is, one sentence each.
    do_not_trust: list = field(default_factory=list)
    inputs: dict = field(default_factory=dict)    # e.g. {"kind": "projections", "spacing_mm": 1.0, ...}
    outputs: dict = field(default_factory=dict)   # e.g. {"levels": ["L3", "T12"], "threshold": 0.3}
    training: dict = field(default_factory=dict)  # data, samples, epochs, batch_size, device, ...
    metrics: dict = field(default_factory=dict)   # held-out results, nested by dataset
    notes: str = ""
    extra: dict = field(default_factory=dict)     # task-specific fields, and fields this ctviewer does not know

    def to_json(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self), default=_plain))

    @classmethod
    def from_json(cls, data, path: str | Path | None = None) -> ModelCard:
        """Build a card from parsed JSON; a missing or mistyped field is an InputError naming it."""
        if not isinstance(data, dict):
            raise InputError("model card is not a JSON object", path)
        for key in _REQUIRED:
            if not data.get(key):
                raise InputError(f"model card misses the required field '{key}'", path)
        values, unknown = {}, {}
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in data.items():
            if key not in known:
                unknown[key] = value  # a newer ctviewer's field: kept, so that it survives a rewrite
                continue
            if key in _TEXT and not isinstance(value, str):
                raise InputError(f"model card field '{key}' should be text, not {_kind(value)}", path)
            if key in _TABLES and not isinstance(value, dict):
                raise InputError(f"model card field '{key}' should be an object, not {_kind(value)}", path)
            if key == "do_not_trust" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise InputError("model card field 'do_not_trust' should be a list of text", path)
            if key == "format_version" and (isinstance(value, bool) or not isinstance(value, int)):
                raise InputError(f"model card field 'format_version' should be a whole number, "
                                 f"not {_kind(value)}", path)
            if key == "version":
                if isinstance(value, bool) or not isinstance(value, (str, int)):
                    raise InputError(f"model card field 'version' should be text, not {_kind(value)}", path)
                value = str(value)
            values[key] = value
        for table, keys in _NUMBERS.items():
            for key in keys:
                given = (values.get(table) or {}).get(key)
                if given is not None and not _is_numbers(given):
                    raise InputError(f"model card field '{table}.{key}' should be a number, not "
                                     f"{json.dumps(given)[:40]}", path)
        _check_real_data(values.get("real_data") or {}, path)
        values["extra"] = {**unknown, **values.get("extra", {})}
        return cls(**values)

    def write(self, path: str | Path) -> None:
        """Save the card as indented JSON, atomically."""
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> ModelCard:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError("model card not found", path) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"model card cannot be read: {exc}", path) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"model card is not valid JSON: {exc.msg} (line {exc.lineno})", path) from None
        return cls.from_json(data, path)

    def key_metrics(self, limit: int = 4) -> str:
        """For one-line listings: the real-data summary first where the card has one, then the first few
        held-out numbers: "real data: L3 within 1 slice on 3 real CTs; synthetic_test: ..."."""
        summary = str(self.real_data.get("summary", "")).strip()
        parts, count = [f"real data: {summary}"] if summary else [], 0
        for dataset, values in self.metrics.items():
            if not isinstance(values, dict):
                values, dataset = {dataset: values}, ""
            numbers = [f"{k} {_short(v)}" for k, v in values.items()
                       if isinstance(v, (int, float)) and not isinstance(v, bool)][: limit - count]
            if numbers:
                parts.append(f"{dataset}: " * bool(dataset) + ", ".join(numbers))
                count += len(numbers)
            if count >= limit:
                break
        return "; ".join(parts)


    def real_data_lines(self) -> list[str]:
        """One line per real scan or photo: "ACRIN 001 [held out]: L3 error_mm -2.1, ... — remark"."""
        lines = []
        for case in self.real_data.get("cases", []):
            figures = ", ".join(f"{k} {_figure(v)}" for k, v in (case.get("figures") or {}).items())
            role = f" [{case['role']}]" if case.get("role") else ""
            remark = f" — {case['remark']}" if case.get("remark") else ""
            lines.append(f"{case['case']}{role}: {figures or 'no figures'}{remark}")
        return lines

    def sources(self) -> list[str]:
        """Where the real data comes from (credits), as the card names them."""
        return [str(s) for s in self.real_data.get("sources", [])]


def _check_real_data(real: dict, path) -> None:
    """``real_data``'s parts have the types the listings and the GUI read (one line naming the part)."""
    for key in ("summary", "measured"):
        if not isinstance(real.get(key, ""), str):
            raise InputError(f"model card field 'real_data.{key}' should be text", path)
    for key in ("sources", "cases"):
        if not isinstance(real.get(key, []), list):
            raise InputError(f"model card field 'real_data.{key}' should be a list", path)
    for n, case in enumerate(real.get("cases", [])):
        where = f"model card field 'real_data.cases[{n}]'"
        if not isinstance(case, dict) or not isinstance(case.get("case"), str) or not case["case"]:
            raise InputError(f"{where} should be an object with a 'case' name", path)
        if not isinstance(case.get("figures", {}), dict):
            raise InputError(f"{where}.figures should be an object", path)
        for key in ("role", "remark"):
            if not isinstance(case.get(key, ""), str):
                raise InputError(f"{where}.{key} should be text", path)


def _figure(value) -> str:
    """A real-data figure as text: numbers short, yes/no for true/false, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return "/".join(_figure(v) for v in value)
    if value is None:
        return "-"
    return _short(value) if isinstance(value, float) else str(value)


def _is_numbers(value) -> bool:
    """A finite number, or a list of them (None allowed inside: 'spacing_mm': [null, 3, 3])."""
    if isinstance(value, list):
        return all(v is None or _is_numbers(v) for v in value) and not any(isinstance(v, list) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _plain(value):
    """JSON for what tasks put in cards: numpy scalars and arrays, paths, tuples."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} cannot be written to a model card")
