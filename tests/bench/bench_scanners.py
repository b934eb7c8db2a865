"""Benchmark: a ~1,500-line file of four scanners analysed and split (target: under 1 s).

Run from the repository root:  .venv/bin/python tests/bench/bench_scanners.py [--runs N]

Each run parses, detects, resolves, slices, extracts parameters, runs the security rules,
finds contamination, generates the four isolated files, proves them statically and writes
them to a temporary folder. Reported: median and min-max over the runs, without and with
bandit's second opinion, and the one-off import cost of the package in a fresh process.
Not part of ``make test``.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scanners"))

from bigfile import big_scanner_file

from tapereader.core.scanning.analysis import analyse, write_outputs
from tapereader.core.scanning.parse import source_from_bytes


def _time(runs: int, bandit: bool, text: str) -> list[float]:
    out = []
    with tempfile.TemporaryDirectory(prefix="tr-bench-") as tmp:
        for i in range(runs + 1):
            t0 = time.perf_counter()
            source = source_from_bytes("desk.py", text.encode())
            a = analyse(source, second_opinion=bandit)
            write_outputs(a, Path(tmp) / str(i))
            elapsed = time.perf_counter() - t0
            if i:  # the first run warms caches (bandit's plugins load lazily)
                out.append(elapsed)
            assert len(a.report.scanners) == 4 and all(s.isolated for s in a.report.scanners)
    return out


def _import_cost() -> float:
    code = (
        "import time; t = time.perf_counter(); "
        "import tapereader.core.scanning.analysis; print(time.perf_counter() - t)"
    )
    return float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args, _ = parser.parse_known_args()  # make bench passes its own arguments to all
    text = big_scanner_file()
    print(f"file: {text.count(chr(10))} lines, 4 scanners, {len(text.encode())} bytes")
    ok = True
    for bandit in (False, True):
        times = _time(args.runs, bandit, text)
        med = statistics.median(times)
        label = "with bandit   " if bandit else "without bandit"
        print(
            f"{label}: median {med:.3f} s, min {min(times):.3f} s, max {max(times):.3f} s "
            f"({args.runs} runs)"
        )
        ok = ok and (bandit or med < 1.0)
    print(f"import of tapereader.core.scanning.analysis in a fresh process: {_import_cost():.3f} s")
    print("target (median under 1 s without bandit):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
