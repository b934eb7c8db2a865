"""Reading large files in batches (bounded memory) writes exactly what one read would."""

import gzip
from pathlib import Path

import msgspec
import polars as pl
import pytest

from tapereader.ingest.generic import ColumnMapping
from tapereader.ingest.pipeline import ingest

from .conftest import BTC_FEED, TARDIS_QUOTES, TARDIS_TRADES, make_ctx, tree_digest
from .test_generic import TRADES_TOML


def _same_result(paths: list[Path], tmp_path: Path, batch_bytes: int, **options) -> None:
    whole = ingest(paths, tmp_path / "whole", make_ctx(**options), record_events=False)
    parts = ingest(
        paths, tmp_path / "parts", make_ctx(batch_bytes=batch_bytes, **options), record_events=False
    )
    assert tree_digest(tmp_path / "parts") == tree_digest(tmp_path / "whole")
    assert msgspec.to_builtins(parts.files) == msgspec.to_builtins(whole.files)


@pytest.mark.parametrize("name", [TARDIS_TRADES, TARDIS_QUOTES])
def test_tardis_in_batches(market_data: Path, tmp_path: Path, name: str) -> None:
    # About 85 bytes a row: batches of roughly 600 rows, written in 2,500-row files.
    _same_result([market_data / name], tmp_path, 50_000, chunk_rows=2_500, gap_threshold_s=20)


def test_binance_feed_in_batches(market_data: Path, tmp_path: Path) -> None:
    # About 30 batches; files of 100,000 rows cut across batch boundaries.
    _same_result([market_data / BTC_FEED], tmp_path, 1_000_000, chunk_rows=100_000)


@pytest.mark.parametrize("lost", [None, 100], ids=["intact", "one_diff_lost"])
def test_feed_head_in_tiny_batches(market_data: Path, tmp_path: Path, lost: int | None) -> None:
    # Batches of a few lines: the snapshot (line 55) arrives batches after the diffs that
    # bridge it, and a lost diff breaks the chain inside a later batch.
    with gzip.open(market_data / BTC_FEED, "rb") as fh:
        head = [fh.readline() for _ in range(2_000)]
    if lost:
        depth = [i for i, line in enumerate(head) if b"@depth" in line[:80]]
        del head[depth[lost]]
    feed = tmp_path / "head_rawfeed.gz"
    feed.write_bytes(gzip.compress(b"".join(head), compresslevel=1))
    _same_result([feed], tmp_path, 8_000, chunk_rows=5_000)
    book = (
        ingest([feed], tmp_path / "again", make_ctx(batch_bytes=8_000), record_events=False)
        .files[0]
        .book
    )
    assert book.rebuilt and book.snapshot_line == 55
    assert len(book.chain_breaks) == (1 if lost else 0)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_generic_in_batches(market_data: Path, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"trades{suffix}"
    table = pl.read_csv(market_data / TARDIS_TRADES)
    if suffix == ".parquet":
        table.write_parquet(path)
    else:
        table.write_csv(path)
    mapping_file = tmp_path / "mapping.toml"
    mapping_file.write_text(TRADES_TOML)
    mapping = ColumnMapping.from_toml(mapping_file)
    whole, parts = make_ctx(chunk_rows=3_000), make_ctx(batch_bytes=40_000, chunk_rows=3_000)
    for ctx, name in ((whole, "whole"), (parts, "parts")):
        ctx.extra["mapping"] = mapping
        ingest([path], tmp_path / name, ctx, data_format="generic", record_events=False)
    assert tree_digest(tmp_path / "parts") == tree_digest(tmp_path / "whole")
    assert len(list((tmp_path / "parts").rglob("*.parquet"))) == 1 + 4  # instrument + data
