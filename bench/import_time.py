"""Import time of app.py and of each page, as a ratio against `python -c "import streamlit, openai, pandas"` (issue 24:
moving core/ into packages must not make the app slower to start).

Each measurement is a fresh interpreter that runs the file's own top-level imports (what Python loads before the
page's first line of UI; the page body needs a Streamlit session and is not run). What is measured is the child's
CPU time (user + system): on a shared 2-core machine wall-clock time mostly measures the neighbours (the same
baseline read 3.0 s and 3.5 s in one interleaved run); wall-clock medians are printed too. The runs are interleaved
(baseline, app, page, page, ..., then again) so a busy machine weighs on every column alike; medians are reported.

    python bench/import_time.py [--root REPO ...] [--runs 7]

--root measures another checkout (e.g. `git worktree add /tmp/before aa53b66`, then `--root /tmp/before --root .`)
with this same script; two or more roots are measured interleaved, so they are compared under the same load.
"""
from __future__ import annotations

import argparse
import ast
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BASELINE = "import streamlit, openai, pandas"


def top_level_imports(path: Path) -> str:
    """The file's module-level import statements (`__future__` left out), as one program."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom) and not (
                isinstance(node, ast.ImportFrom) and node.module == "__future__"):
            lines.append(ast.unparse(node))
    return "\n".join(lines)


def timed(program: str, root: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one fresh interpreter running `program` in `root`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", program], cwd=root, check=True, capture_output=True,
                   env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(Path.home()),
                        "PROMPTLAB_DATA_DIR": "/tmp/promptlab-import-time"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, wall


def targets(root: Path) -> dict[str, str]:
    found = {"baseline": BASELINE, "app.py": top_level_imports(root / "app.py")}
    for page in sorted((root / "pages").glob("*.py")):
        if not page.name.startswith("_"):
            found[f"pages/{page.name}"] = top_level_imports(page)
    return found


def measure(roots: list[Path], runs: int) -> list[dict[str, tuple[float, float]]]:
    programs = [targets(root) for root in roots]
    for root, found in zip(roots, programs, strict=True):  # warm the file cache and .pyc files once, untimed
        for program in found.values():
            timed(program, root)
    samples: list[dict[str, list[tuple[float, float]]]] = [{name: [] for name in found} for found in programs]
    for _ in range(runs):
        for name in programs[0]:
            for root, found, got in zip(roots, programs, samples, strict=True):
                if name in found:
                    got[name].append(timed(found[name], root))
    return [{name: (statistics.median(v[0] for v in values), statistics.median(v[1] for v in values))
             for name, values in got.items()} for got in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, action="append", help="a checkout to measure (repeatable)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    roots = [r.resolve() for r in args.root or [Path(__file__).resolve().parent.parent]]
    results = measure(roots, args.runs)
    print(f"median of {args.runs} fresh interpreters each; ratio = CPU seconds / those of "
          f"`python -c \"{BASELINE}\"` (wall-clock seconds in brackets)")
    print(f"{'what':24s}" + "".join(f" {str(r)[-30:]:>30s}" for r in roots))
    for name in results[0]:
        cells = [f"{m[name][0]:5.2f} s ×{m[name][0] / m['baseline'][0]:5.2f} ({m[name][1]:5.2f} s)" if name in m
                 else "—" for m in results]
        print(f"{name:24s}" + "".join(f" {c:>30s}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
