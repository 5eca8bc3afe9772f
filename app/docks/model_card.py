"""A model card for people, as the HTML the model dock's card view shows: what the model does, where
it comes from, then how it did on real data (per scan or photo) and where it must not be trusted,
then its held-out metrics and notes, its inputs, outputs and training settings."""

from __future__ import annotations

import html


def card_html(entry) -> str:
    """A model card for people: what the model does, its inputs and outputs, training, held-out metrics."""
    card = entry.card
    head = [("Task", card.task), ("Version", card.version), ("Created", card.created or "unknown"),
            ("From", "shipped with ctviewer" if entry.shipped else "your models"), ("File", str(entry.path))]
    parts = [f"<h3>{html.escape(card.name)}</h3>"]
    if card.description:
        parts.append(f"<p>{html.escape(card.description)}</p>")
    parts.append(_table(head))
    if card.real_data:
        parts.append(_real_data(card))
    if card.do_not_trust:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in card.do_not_trust)
        parts.append(f"<h4 style='color: #a00000'>Do not trust it</h4><ul style='margin-left: -20px'>{items}</ul>")
    if card.metrics:
        parts.append(f"<h4>Metrics on held-out data</h4>{_nested(card.metrics)}")
    if card.notes:
        parts.append(f"<h4>Notes</h4><p>{html.escape(card.notes)}</p>")
    for title, section in (("Inputs", card.inputs), ("Outputs", card.outputs), ("Training", card.training),
                           ("Other", card.extra)):
        if section:
            parts.append(f"<h4>{title}</h4>{_nested(section)}")
    return "".join(parts)


def _real_data(card) -> str:
    """The real-data figures: the summary, one row per scan or photo, and where the data comes from."""
    real = card.real_data
    parts = ["<h4>On real data</h4>"]
    if real.get("summary"):
        parts.append(f"<p>{html.escape(str(real['summary']))}</p>")
    if real.get("measured"):
        parts.append(f"<p><i>{html.escape(str(real['measured']))}</i></p>")
    rows = []
    for case in real.get("cases", []):
        figures = "<br>".join(f"{html.escape(str(k).replace('_', ' '))}: {html.escape(_plain(v))}"
                              for k, v in (case.get("figures") or {}).items())
        rows.append(f"<tr><td><b>{html.escape(case['case'])}</b><br><i>{html.escape(case.get('role', ''))}</i></td>"
                    f"<td>{figures}</td><td>{html.escape(case.get('remark', ''))}</td></tr>")
    if rows:
        parts.append("<table border='1' cellspacing='0' cellpadding='3'><tr><th>scan / photo</th><th>figures</th>"
                     f"<th>remark</th></tr>{''.join(rows)}</table>")
    if real.get("sources"):
        credits = "".join(f"<li>{html.escape(str(s))}</li>" for s in real["sources"])
        parts.append(f"<p><i>Data:</i></p><ul style='margin-left: -20px'>{credits}</ul>")
    return "".join(parts)


def _table(rows) -> str:
    cells = "".join(f"<tr><td><i>{html.escape(k)}</i>&nbsp;</td><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _nested(values: dict) -> str:
    items = []
    for key, value in values.items():
        label = html.escape(str(key).replace("_", " "))
        if isinstance(value, dict):
            items.append(f"<li><i>{label}</i>{_nested(value)}</li>")
        else:
            items.append(f"<li><i>{label}</i>: {html.escape(_plain(value))}</li>")
    return f"<ul style='margin-left: -20px'>{''.join(items)}</ul>"


def _plain(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return "" if value is None else str(value)
