"""benchmarks/results.py: a benchmark replaces its own section of RESULTS.md and no other."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _results():
    spec = importlib.util.spec_from_file_location("bench_results", REPO / "benchmarks" / "results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_replaces_its_own_section_and_keeps_the_others(tmp_path, capsys):
    results = _results()
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Old — `benchmarks/bench_a.py`\n\nold figure 9 s\n\n"
                    "## Copied by hand\n\nhand figure 3 s\n")
    out = results.Report("benchmarks/bench_a.py", "New title", path=path)
    out("figure 1.5 s   0.5x")
    assert out.verdict("under 2 s", True, "1.5 s") and out.save()
    out = results.Report("bench_b.py", "B", path=path)
    out.verdict("under 1 s", False)
    assert not out.save()
    text = path.read_text()
    sections = text.split("\n## ")
    assert sections[0] == "# Benchmark results\n"
    assert sections[1].startswith("New title — `benchmarks/bench_a.py`\n\n")
    assert "load average" in sections[1] and "figure 1.5 s   0.5x\ntarget: under 2 s — PASS (1.5 s)\n```" in sections[1]
    assert "old figure" not in text and sections[2] == "Copied by hand\n\nhand figure 3 s\n"
    assert sections[3].startswith("B — `benchmarks/bench_b.py`") and "target: under 1 s — FAIL" in sections[3]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md"]   # no temporary left behind
    assert "figure 1.5 s   0.5x" in capsys.readouterr().out                 # what is written was printed


def test_every_benchmark_writes_its_section_through_results():
    for script in sorted((REPO / "benchmarks").glob("bench_*.py")):
        text = script.read_text()
        assert "from results import" in text and ("record(__file__" in text or ".save(" in text), \
            f"{script.name} does not write its section of RESULTS.md"
