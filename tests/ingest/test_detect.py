"""Format detection on the real files, and where it must refuse to guess."""

import gzip
from pathlib import Path

import pytest

from tapereader.ingest.detect import detect_format
from tapereader.ingest.pipeline import ingest
from tapereader.ingest.report import IngestError

from .conftest import (
    BTC_FEED,
    FTX_BARS,
    FXCM_TICKS,
    OANDA_HOURS,
    TARDIS_QUOTES,
    TARDIS_TRADES,
    make_ctx,
)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        (BTC_FEED, "binance-rawfeed"),
        (TARDIS_TRADES, "tardis"),
        (TARDIS_QUOTES, "tardis"),
        (FTX_BARS, "ohlcv-bars"),
        (f"{FXCM_TICKS}/20140501_quote.zip", "lean-fx-ticks"),
        (OANDA_HOURS, "lean-fx-bars"),
    ],
)
def test_real_files_are_detected(market_data: Path, name: str, fmt: str) -> None:
    assert detect_format(market_data / name) == fmt


def test_gzipped_tardis_csv(market_data: Path, tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv.gz"
    path.write_bytes(gzip.compress((market_data / TARDIS_QUOTES).read_bytes()))
    report = ingest([path], tmp_path / "cat", make_ctx(), record_events=False)
    assert report.files[0].data_format == "tardis-quotes"
    assert report.files[0].kinds[0].rows_written == 9_999


def test_a_lean_zip_outside_a_venue_folder_needs_the_venue(
    market_data: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "20140501_quote.zip"
    copy.write_bytes((market_data / FXCM_TICKS / "20140501_quote.zip").read_bytes())
    with pytest.raises(IngestError, match="pass --venue"):
        ingest([copy], tmp_path / "cat", make_ctx())
    ctx = make_ctx()
    ctx.venue = "FXCM"
    report = ingest([copy], tmp_path / "cat", ctx, record_events=False)
    assert report.files[0].kinds[0].rows_read == 51_053
