"""A 1,500-line, four-scanner file is split correctly (speed is measured in tests/bench)."""

from pathlib import Path

from tapereader.core.scanning.analysis import analyse

from .bigfile import big_scanner_file


def test_big_file_is_split_into_four_isolated_scanners(tmp_path: Path) -> None:
    text = big_scanner_file()
    assert 1400 <= text.count("\n") <= 1700
    p = tmp_path / "desk.py"
    p.write_text(text)
    a = analyse(p, second_opinion=False)
    names = [s.name for s in a.report.scanners]
    assert names == [
        "scan_volume_breakout",
        "scan_gap_and_go",
        "scan_quiet_squeeze",
        "scan_trend_pullback",
    ]
    for k, s in enumerate(a.report.scanners):
        assert s.isolated, s.isolation_problems
        assert len(s.helpers) == 25  # its 24 features and the shared safe_div
        assert {p.name for p in s.parameters} >= {
            "P.price_min",
            "P.vol_mult",
            "P.lookback",
            f"P.band_{k}",
        }
        assert f"s{(k + 1) % 4}_feature_0" not in a.sources[s.name]
    owners = {(c.scanner, c.owner) for c in a.report.contamination}
    assert ("scan_volume_breakout", "scan_trend_pullback") in owners
