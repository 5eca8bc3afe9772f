"""Each benchmark writes its own section of benchmarks/RESULTS.md, so every figure there is one a
script printed.

A section belongs to one script: its heading ends with the script's name in backticks, and a new run
replaces that section (or appends it) and leaves every other one as it was. The file is replaced in
one step (a temporary beside it, then ``os.replace``) under a lock on its folder, so two benchmarks
finishing together cannot lose each other's section and a killed run leaves the old file whole.

Use::

    from results import Report           # benchmarks/ is the script's own folder, first on sys.path
    out = Report(__file__, "Locating L3 and T12")
    out("locate L3 + T12    545 ms   28x")    # printed now, and kept for the section
    out.verdict("under 1 s", total < 1.0)
    out.save()                                 # out.save(False) for --no-record: printed only
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().with_name("RESULTS.md")
TOP = "# Benchmark results\n"


def machine_line() -> str:
    """Date, machine, CPUs, Python and the load average now: what makes a figure comparable."""
    load = os.getloadavg()
    cpu = _cpu_model()
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}{f' ({cpu})' if cpu else ''}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end of the run.")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def section_key(script: str | Path) -> str:
    """What identifies a script's section: its path in backticks, at the end of the heading."""
    return f"`benchmarks/{Path(script).name}`"


def record(script: str | Path, title: str, lines: list[str], path: Path = RESULTS) -> Path:
    """Replace (or append) the section of ``script`` in RESULTS.md with ``lines`` under ``title``."""
    key = section_key(script)
    section = "\n".join([f"## {title} — {key}", "", machine_line(), "", *lines]).rstrip() + "\n"
    with _locked(path):
        text = path.read_text(encoding="utf-8") if path.exists() else TOP
        parts = _split(text)
        for n, part in enumerate(parts):
            if part.startswith("## ") and part.splitlines()[0].rstrip().endswith(key):
                parts[n] = section
                break
        else:
            parts.append(section)
        new = "\n".join(p.rstrip("\n") + "\n" for p in parts)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        tmp.write_text(new, encoding="utf-8")
        os.replace(tmp, path)
    return path


def status_mb(key: str) -> float:
    """``VmRSS`` / ``VmHWM`` … of this process from /proc/self/status, in MiB (nan where absent)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> bool:
    """Reset the process's peak resident size (VmHWM) so a later reading is this step's; False where
    the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _split(text: str) -> list[str]:
    """The file's preamble, then one string per ``## `` section."""
    parts, current = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("## ") and current:
            parts.append("".join(current))
            current = []
        current.append(line)
    if current:
        parts.append("".join(current))
    return parts


class _locked:
    """An exclusive lock on the folder of RESULTS.md while the file is read and replaced (the file itself
    is replaced, so a lock on it would not outlive the first writer; a lock file would be left behind)."""

    def __init__(self, path: Path):
        self.folder = path.resolve().parent

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.folder, os.O_RDONLY)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class Report:
    """Print a benchmark's lines as it goes and write them, verbatim, as its section at the end."""

    def __init__(self, script: str | Path, title: str, path: Path = RESULTS):
        self.script, self.title, self.path = script, title, path
        self.lines: list[str] = []
        self.passed: list[bool] = []

    def __call__(self, line: str = "", flush: bool = True) -> None:
        print(line, flush=True)
        self.lines.extend(line.splitlines() or [""])

    def verdict(self, target: str, ok: bool, figure: str = "") -> bool:
        """One line 'target: ... — PASS/FAIL (figure)'; remembered for the exit code."""
        self.passed.append(bool(ok))
        self(f"target: {target} — {'PASS' if ok else 'FAIL'}{f' ({figure})' if figure else ''}")
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(self.passed)

    def save(self, record_it: bool = True, markdown: bool = False) -> bool:
        """Write the section (console lines in a code block unless ``markdown``); True if every target passed."""
        if record_it:
            body = self.lines if markdown else ["```", *self.lines, "```"]
            record(self.script, self.title, body, self.path)
            print(f"(recorded in {self.path})")
        return self.ok
