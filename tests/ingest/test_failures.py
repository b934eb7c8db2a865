"""Malformed input fails with file, line and problem, and leaves the catalog as it was."""

import gzip
from pathlib import Path

import pytest

from tapereader.ingest.pipeline import ingest
from tapereader.ingest.report import IngestError

from .conftest import BTC_FEED, FXCM_TICKS, TARDIS_QUOTES, TARDIS_TRADES, make_ctx, tree_digest


@pytest.fixture
def catalog(market_data: Path, tmp_path: Path) -> Path:
    """A catalog that already holds data (and an event store), so 'unchanged' means something."""
    root = tmp_path / "catalog"
    ingest([market_data / TARDIS_TRADES], root, make_ctx())
    return root


def _fails(paths: list[Path], catalog: Path, **ctx) -> IngestError:
    before = tree_digest(catalog)
    siblings = sorted(p.name for p in catalog.parent.iterdir())
    with pytest.raises(IngestError) as err:
        ingest(paths, catalog, make_ctx(**ctx))
    assert tree_digest(catalog) == before, "a failed ingest changed the catalog"
    assert sorted(p.name for p in catalog.parent.iterdir()) == siblings, "staging left behind"
    return err.value


def _feed_head(market_data: Path, n: int) -> list[bytes]:
    with gzip.open(market_data / BTC_FEED) as fh:
        return [fh.readline() for _ in range(n)]


def test_truncated_gzip(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    bad = tmp_path / "truncated_rawfeed.gz"
    data = (market_data / BTC_FEED).read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    err = _fails([bad], catalog)
    assert err.path == str(bad) and "truncated" in err.problem
    assert err.line is not None and err.line > 1000


def test_a_line_that_is_not_json(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    lines = _feed_head(market_data, 200)
    lines[120] = lines[120][:60] + b"\n"  # cut mid-message
    bad = tmp_path / "broken_rawfeed.gz"
    bad.write_bytes(gzip.compress(b"".join(lines)))
    err = _fails([bad], catalog)
    assert err.line == 121 and "not valid JSON" in err.problem


def test_unknown_symbol_in_a_feed(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    lines = _feed_head(market_data, 200)
    lines[10] = lines[10].replace(b'"s":"BTCUSDT"', b'"s":"XYZUSDT"')
    bad = tmp_path / "unknown_rawfeed.gz"
    bad.write_bytes(gzip.compress(b"".join(lines)))
    err = _fails([bad], catalog)
    assert err.line == 11 and "unknown symbol 'XYZUSDT' on BINANCE" in err.problem


def _tardis_with(market_data: Path, tmp_path: Path, row: int, fix) -> Path:
    lines = (market_data / TARDIS_QUOTES).read_text().splitlines(keepends=True)
    lines[row - 1] = fix(lines[row - 1])
    bad = tmp_path / "quotes.csv"
    bad.write_text("".join(lines))
    return bad


def test_csv_row_with_a_missing_field(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    bad = _tardis_with(market_data, tmp_path, 500, lambda s: s.rsplit(",", 1)[0] + ",\n")
    err = _fails([bad], catalog)
    assert err.line == 500 and "missing value for field 'bid_size'" in err.problem


def test_csv_row_with_a_non_numeric_field(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    def garble(row: str) -> str:
        fields = row.split(",")
        fields[5] = "96x2"  # ask_price
        return ",".join(fields)

    bad = _tardis_with(market_data, tmp_path, 77, garble)
    err = _fails([bad], catalog)
    assert err.line == 77 and "field 'ask_price': '96x2' is not a number" in err.problem


def test_csv_row_with_too_many_fields(market_data: Path, tmp_path: Path, catalog: Path) -> None:
    bad = _tardis_with(market_data, tmp_path, 9, lambda s: s.rstrip("\n") + ",1\n")
    err = _fails([bad], catalog)
    assert err.line == 9 and "cannot parse CSV" in err.problem


def test_one_bad_file_among_good_ones_writes_nothing(
    market_data: Path, tmp_path: Path, catalog: Path
) -> None:
    good = market_data / FXCM_TICKS / "20140501_quote.zip"
    bad = _tardis_with(
        market_data,
        tmp_path,
        3,
        lambda s: s.replace("binance-futures,BTCUSDT", "binance-futures,XYZUSDT"),
    )
    err = _fails([good, market_data / TARDIS_QUOTES, bad], catalog)
    assert err.line == 3 and "XYZUSDT" in err.problem


def test_reingesting_the_same_file_adds_no_duplicates(market_data: Path, catalog: Path) -> None:
    before = tree_digest(catalog / "data")
    report = ingest([market_data / TARDIS_TRADES], catalog, make_ctx())
    (k,) = report.files[0].kinds
    assert k.rows_written == 0 and k.rows_already_in_catalog == 9_999
    assert tree_digest(catalog / "data") == before


def test_overlapping_different_data_is_refused(
    market_data: Path, tmp_path: Path, catalog: Path
) -> None:
    # The same trades cut into different files overlap the existing ones in time.
    before = tree_digest(catalog)
    with pytest.raises(IngestError, match="overlaps catalog file"):
        ingest([market_data / TARDIS_TRADES], catalog, make_ctx(chunk_rows=1_000))
    assert tree_digest(catalog) == before


def test_catalog_that_did_not_exist_is_not_created_on_failure(
    market_data: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "x_rawfeed.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(IngestError):
        ingest([bad], tmp_path / "new_catalog", make_ctx())
    assert not (tmp_path / "new_catalog").exists()


def test_a_failed_event_append_rolls_the_catalog_back(
    market_data: Path, tmp_path: Path, catalog: Path
) -> None:
    before = tree_digest(catalog)
    not_a_db = tmp_path / "events_folder"
    not_a_db.mkdir()
    with pytest.raises(IngestError, match="catalog changes rolled back"):
        ingest([market_data / TARDIS_QUOTES], catalog, make_ctx(), events=not_a_db)
    assert tree_digest(catalog) == before


def test_same_time_range_with_different_content_is_refused(
    market_data: Path, tmp_path: Path
) -> None:
    day = market_data / FXCM_TICKS / "20140501_quote.zip"
    catalog = tmp_path / "catalog"
    ingest([day], catalog, make_ctx(crossed="drop"))
    before = tree_digest(catalog)
    # Keeping crossed quotes changes the rows but not the first and last timestamps.
    with pytest.raises(IngestError, match="different content"):
        ingest([day], catalog, make_ctx(crossed="keep"))
    assert tree_digest(catalog) == before
