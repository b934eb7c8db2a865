"""House rules for the scanner analysis, and two scanners under one name."""

import subprocess
import sys
import textwrap
from pathlib import Path

from tapereader.core.scanning.analysis import analyse


def test_core_scanning_is_engine_free() -> None:
    code = textwrap.dedent("""\
        import pkgutil, importlib, sys
        import tapereader.core.scanning as pkg
        for m in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"tapereader.core.scanning.{m.name}")
        bad = sorted(n for n in sys.modules if n.startswith("nautilus_trader")
                     or (n.startswith("tapereader.") and not n.startswith("tapereader.core")))
        print(bad)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "[]"


def test_two_scanners_with_one_name_are_kept_apart(tmp_path: Path) -> None:
    p = tmp_path / "dup.py"
    p.write_text(
        textwrap.dedent("""\
        # ==== Scanner 1: breakout ====
        THRESH = 1.5

        def scan(df):
            return df["close"] > THRESH * df["close"].rolling(20).mean()

        # ==== Scanner 2: breakdown ====
        THRESH = 0.7

        def scan(df):
            return df["close"] < THRESH * df["close"].rolling(20).mean()
    """)
    )
    a = analyse(p, second_opinion=False)
    assert [s.name for s in a.report.scanners] == ["scan@4", "scan@10"]
    assert [s.parameters[0].value for s in a.report.scanners] == ["1.5", "0.7"]
    assert all(s.isolated for s in a.report.scanners)
    assert sorted(a.file_names.values()) == ["scan_10.py", "scan_4.py"]
    (c,) = a.report.contamination
    assert (c.scanner, c.name, c.owner) == ("scan@4", "THRESH", "scan@10")


def test_a_main_function_running_every_scanner_is_cut_per_scanner(tmp_path: Path) -> None:
    p = tmp_path / "runner.py"
    p.write_text(
        textwrap.dedent("""\
        import argparse
        import pandas as pd

        VOL_MULT = 2.0
        GAP_MIN = 0.03

        def scan_volume(df):
            return df["volume"] > VOL_MULT * df["volume"].rolling(20).mean()

        def scan_gap(df):
            return df["open"] / df["close"].shift() - 1 > GAP_MIN

        def main():
            parser = argparse.ArgumentParser()
            parser.add_argument("csv")
            args = parser.parse_args()
            df = pd.read_csv(args.csv)
            vol = scan_volume(df)
            gap = scan_gap(df)
            print("volume", int(vol.sum()))
            print("gap", int(gap.sum()))

        if __name__ == "__main__":
            main()
    """)
    )
    a = analyse(p, second_opinion=False)
    vol = a.sources["scan_volume"]
    assert 'parser.add_argument("csv")' in vol and "vol = scan_volume(df)" in vol
    assert "scan_gap" not in vol and "GAP_MIN" not in vol and 'print("gap"' not in vol
    assert vol.rstrip().endswith('if __name__ == "__main__":\n    main()')
    assert all(s.isolated for s in a.report.scanners)
