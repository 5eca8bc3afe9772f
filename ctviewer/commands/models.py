"""`ctviewer models [--json] [--task T]`: the shipped and the user's models, one line each from their cards.

Where a card has real-data figures, its line starts with their summary, and indented lines below it
give them per scan or photo, then what the model must not be trusted with ("do not trust: ...").

Broken entries (a model without its card, a malformed card, a card from a newer ctviewer, a zip bomb,
a card naming a task this ctviewer does not know) are not listed as models; each gets one warning line
on stderr (or an entry under "problems" in JSON) saying what is wrong.
"""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    parser = sub.add_parser("models", help="list the shipped and the user's models with their cards")
    parser.add_argument("--json", action="store_true", help="print JSON (whole cards) instead of text")
    parser.add_argument("--task", default=None, help="only models of this task (e.g. slice_locator)")


def run(args) -> int:
    from ctviewer.ml.registry import SHIPPED_DIR, scan_models, user_models_dir

    entries, problems = scan_models(args.task)
    folders = {"user": str(user_models_dir()), "shipped": str(SHIPPED_DIR)}
    if args.json:
        print(json.dumps({"models": [{"name": e.name, "task": e.card.task, "version": e.card.version,
                                      "created": e.card.created, "shipped": e.shipped, "path": str(e.path),
                                      "card_path": str(e.card_path), "card": e.card.to_json()} for e in entries],
                          "problems": problems, "folders": folders}, indent=2))
    else:
        for problem in problems:
            print(f"ctviewer: warning: {problem}", file=sys.stderr)
        if not entries:
            kind = f" for task {args.task}" if args.task else ""
            print(f"no models{kind} in {folders['user']} or {folders['shipped']}")
        rows = [(e.name, e.card.task, f"v{e.card.version}", e.card.created or "-", e.card.key_metrics() or "-",
                 f"{e.path}{' (shipped)' if e.shipped else ''}") for e in entries]
        widths = [max(len(row[i]) for row in rows) for i in range(4)] if rows else []
        for row, entry in zip(rows, entries):
            print("  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + f"  {row[4]}  {row[5]}")
            for line in entry.card.real_data_lines():
                print(f"    real data: {line}")
            for line in entry.card.do_not_trust:
                print(f"    do not trust: {line}")
    return 0
