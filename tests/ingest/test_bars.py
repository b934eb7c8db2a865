"""The FTX 1-minute OHLCV CSV to Nautilus bars."""

from pathlib import Path

import pytest
from nautilus_trader.model.data import Bar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.ingest.pipeline import ingest
from tapereader.ingest.report import IngestError

from .conftest import FTX_BARS, make_ctx

BAR_TYPE = "BTC-PERP.FTX-1-MINUTE-LAST-EXTERNAL"


def test_sub_tick_values_are_an_error_by_default(market_data: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError) as err:
        ingest([market_data / FTX_BARS], tmp_path / "cat", make_ctx())
    # Row 243 (file line 244) has open 46821.75 on a 1-dollar tick.
    assert err.value.line == 244 and "46821.75" in err.value.problem
    assert FTX_BARS in str(err.value)
    assert not (tmp_path / "cat").exists()


def test_ftx_bars_round_trip_with_rounding_counted(market_data: Path, tmp_path: Path) -> None:
    report = ingest(
        [market_data / FTX_BARS],
        tmp_path / "cat",
        make_ctx(excess_precision="round"),
        record_events=False,
    )
    (k,) = report.files[0].kinds
    assert k.identifier == BAR_TYPE
    assert k.rows_read == k.rows_written == 45_031
    assert k.rounded == 14 and k.gaps == 0  # the README: no gaps
    bars = ParquetDataCatalog(str(tmp_path / "cat")).query(Bar, identifiers=[BAR_TYPE])
    assert len(bars) == 45_031
    # "2021-12-31 23:01:00,46319.0,46385.0,46319.0,46377.0,2300413.7295": stamped at close.
    first = bars[0]
    assert first.ts_event == 1_640_991_720_000_000_000  # 2021-12-31T23:02:00Z
    assert (str(first.open), str(first.high), str(first.close)) == ("46319", "46385", "46377")
    assert str(first.volume) == "2300413.7295"


def test_reject_policy_drops_and_counts_the_rows(market_data: Path, tmp_path: Path) -> None:
    report = ingest(
        [market_data / FTX_BARS],
        tmp_path / "cat",
        make_ctx(excess_precision="reject"),
        record_events=False,
    )
    (k,) = report.files[0].kinds
    assert k.rows_rejected == {"excess_precision": 14} and k.rows_written == 45_017
    assert k.gaps == 2  # the dropped minutes now show as missing bars
