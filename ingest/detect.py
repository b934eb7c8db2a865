"""Which loader reads a file: by name and first bytes, only where that is unambiguous."""

import gzip
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from tapereader.ingest import bars, binance_archive, binance_feed, generic, lean, tardis
from tapereader.ingest.context import LoadContext
from tapereader.ingest.frames import LoadResult
from tapereader.ingest.report import IngestError

# A loader yields one LoadResult per batch it read (large formats read in batches).
Loader = Callable[[Path, LoadContext], Iterator[LoadResult]]


def _whole(load: Callable[[Path, LoadContext], LoadResult]) -> Loader:
    """A loader for formats whose files are small enough to read at once."""

    def batches(path: Path, ctx: LoadContext) -> Iterator[LoadResult]:
        yield load(path, ctx)

    return batches


LOADERS: dict[str, Loader] = {
    "binance-rawfeed": binance_feed.load,
    "binance-archive": binance_archive.load,
    "tardis": tardis.load,
    "lean-fx-ticks": _whole(lean.load_ticks),
    "lean-fx-bars": _whole(lean.load_bars),
    "ohlcv-bars": _whole(bars.load),
    "generic": generic.load,
}

_RAWFEED_LINE = re.compile(rb"^\d{10,20} \{")
_LEAN_BAR_ROW = re.compile(rb"^\d{8} \d{2}:\d{2},")


def _head(path: Path, n: int = 512) -> bytes:
    if path.suffix == ".gz":
        try:
            with gzip.open(path) as fh:
                return fh.read(n)
        except (OSError, EOFError):
            return b""
    with path.open("rb") as fh:
        return fh.read(n)


def detect_format(path: Path) -> str:
    """The format name of ``path`` (a key of :data:`LOADERS`); ambiguity is an error."""
    name = path.name
    if binance_archive.ARCHIVE_NAME.match(name):
        return "binance-archive"
    if lean.TICK_NAME.match(name):
        return "lean-fx-ticks"
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                members = zf.namelist()
                if len(members) == 1 and _LEAN_BAR_ROW.match(zf.open(members[0]).read(64)):
                    return "lean-fx-bars"
        except zipfile.BadZipFile:
            raise IngestError(str(path), "not a readable zip archive") from None
    head = _head(path)
    if _RAWFEED_LINE.match(head):
        return "binance-rawfeed"
    if name.endswith((".csv", ".csv.gz")):
        header = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip().split(",")
        if header[:4] == ["exchange", "symbol", "timestamp", "local_timestamp"]:
            return "tardis"
        if [h.lower() for h in header] == list(bars.OHLCV_HEADER):
            return "ohlcv-bars"
    raise IngestError(
        str(path),
        "cannot tell the format from the name and first line; pass --format "
        f"({', '.join(sorted(LOADERS))})",
    )
