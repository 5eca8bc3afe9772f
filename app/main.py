"""The ``ctviewer`` command: the GUI, ``snapshot``, and every headless verb (handed to ctviewer.cli).

    ctviewer [PATH ...]        the GUI on these files (image first, then label maps)
    ctviewer demo              the GUI on the built-in demo study
    ctviewer demo --soil       the GUI on the built-in synthetic soil micro-CT cube
    ctviewer demo --thin-section
                               the GUI on the built-in project of synthetic thin-section photos
    ctviewer snapshot PATH -o OUT.png [--view ...]
    ctviewer review PATH... [-o picks.csv]
                               review L3/T12 slice picks: a folder of studies, study files or a picks CSV
    ctviewer thin-section open DIR
                               the GUI on a folder of thin-section photos (a project) in its dock
    ctviewer info PATH [--json]  (and the other headless verbs)

Headless verbs never import Qt, so they start fast and run where no display exists.
"""

from __future__ import annotations

import os
import sys

GUI_HELP = __doc__

NO_DISPLAY = ("ctviewer: no display found (DISPLAY is not set); run it inside a desktop session or under "
              "`xvfb-run -a ctviewer ...`, or use the headless commands `ctviewer info PATH` and "
              "`ctviewer snapshot PATH -o OUT.png`.")


def _headless_verbs() -> set[str]:
    from ctviewer.cli import COMMANDS

    return set(COMMANDS)


def _has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal", "vnc")))


def run_gui(paths: list[str], demo: bool | str = False, thin_section: bool = False) -> int:
    """``demo``: True for the demo torso, "soil" for the demo soil cube, "thin-section" for the demo photos."""
    if not _has_display():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        print(f"ctviewer: {missing[0]}: no such file or folder", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("ctviewer")
    app.setOrganizationName("ctviewer")
    window = MainWindow()
    window.show_as_last_time()
    if demo == "soil":
        window.opener.open_demo_soil()
    elif demo == "thin-section":
        window.open_demo_thin_sections()
    elif demo:
        window.opener.open_demo()
    elif thin_section:
        window.thin_section_dock.open_folder(paths[0])
    elif paths:
        window.open_paths(paths)
    code = app.exec()
    # pyqtgraph widgets alive at interpreter exit can crash PySide6 (ENVIRONMENT.md): delete first.
    window.deleteLater()
    app.processEvents()
    return code


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(GUI_HELP)
        return 0
    if argv[:2] == ["thin-section", "open"]:   # the one thin-section verb that needs the GUI
        if len(argv) != 3:
            print("usage: ctviewer thin-section open DIR", file=sys.stderr)
            return 2
        return run_gui(argv[2:], thin_section=True)
    if argv and argv[0] in _headless_verbs():
        from ctviewer.cli import main as cli_main

        return cli_main(argv)
    if argv and argv[0] == "snapshot":
        from app.snapshot import main as snapshot_main

        return snapshot_main(argv[1:])
    if argv and argv[0] == "review":
        from app.review.command import main as review_main

        return review_main(argv[1:])
    if argv and argv[0] == "demo":
        if argv[1:] not in ([], ["--soil"], ["--thin-section"]):
            print("usage: ctviewer demo [--soil | --thin-section]", file=sys.stderr)
            return 2
        return run_gui([], demo=argv[1][2:] if argv[1:] else True)
    return run_gui(argv)


if __name__ == "__main__":
    sys.exit(main())
