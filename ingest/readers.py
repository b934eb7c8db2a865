"""Reading raw bytes and CSV text into polars, with errors that name the file and line."""

import contextlib
import gzip
import hashlib
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from tapereader.ingest.report import IngestError


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def read_gzip(path: Path) -> bytes:
    """Decompress a whole gzip file; a truncated or corrupt one names the last good line."""
    data = path.read_bytes()
    try:
        return gzip.decompress(data)
    except (EOFError, OSError, zlib.error) as exc:
        good = _salvage_gzip(data)
        lines = good.count(b"\n")
        raise IngestError(
            str(path),
            f"gzip stream is truncated or corrupt ({exc}); {lines} complete lines decoded",
            line=lines + 1,
        ) from None


def _salvage_gzip(data: bytes) -> bytes:
    out = zlib.decompressobj(wbits=31)
    try:
        return out.decompress(data)
    except zlib.error:
        return b""


def iter_line_batches(
    path: Path, batch_bytes: int, *, member_suffix: str = ".csv", skip_header: bool = False
) -> Iterator[tuple[str, bytes, int]]:
    """(source name, whole lines, number of the first line) in batches of about ``batch_bytes``.

    Reads plain, gzip (streamed) and single-member zip files without holding the whole file;
    ``skip_header`` drops the first line. A truncated gzip names the first line it lost.
    """
    with contextlib.ExitStack() as stack:
        source = str(path)
        if path.suffix == ".gz":
            fh = stack.enter_context(gzip.open(path, "rb"))
        elif path.suffix == ".zip":
            try:
                zf = stack.enter_context(zipfile.ZipFile(path))
            except zipfile.BadZipFile as exc:
                raise IngestError(source, f"not a readable zip archive: {exc}") from None
            names = [n for n in zf.namelist() if n.lower().endswith(member_suffix)]
            if len(names) != 1:
                raise IngestError(source, f"expected one {member_suffix} member, found {names}")
            source = f"{path}!{names[0]}"
            fh = stack.enter_context(zf.open(names[0]))
        else:
            fh = stack.enter_context(path.open("rb"))
        line = 1
        try:
            if skip_header:
                fh.readline()
                line = 2
            while lines := fh.readlines(batch_bytes):
                yield source, b"".join(lines), line
                line += len(lines)
        except (EOFError, OSError, zlib.error, zipfile.BadZipFile) as exc:
            if path.suffix == ".gz":
                line = _complete_gzip_lines(path) + 1
            raise IngestError(
                source, f"compressed stream is truncated or corrupt ({exc})", line=line
            ) from None


def _complete_gzip_lines(path: Path) -> int:
    # Error path only: how many whole lines decompress before the damage (streamed).
    inflate, count = zlib.decompressobj(wbits=31), 0
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            try:
                count += inflate.decompress(block).count(b"\n")
            except zlib.error:
                break
    return count


def read_zip_member(path: Path, suffix: str = ".csv") -> tuple[str, bytes]:
    """The single member (ending ``suffix``) of a zip archive, and its display name."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(suffix)]
            if len(names) != 1:
                raise IngestError(str(path), f"expected one {suffix} member, found {names}")
            return f"{path}!{names[0]}", zf.read(names[0])
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise IngestError(str(path), f"not a readable zip archive: {exc}") from None


def read_csv_text(
    data: bytes,
    source: str,
    columns: list[str],
    *,
    has_header: bool,
    separator: str = ",",
    first_line: int | None = None,
) -> pl.DataFrame:
    """All columns as text plus ``line`` (1-based source line); ragged rows are errors.

    ``first_line`` is the line number of the first row when ``data`` is a later batch.
    """
    first = first_line or (2 if has_header else 1)
    try:
        df = pl.read_csv(
            data,
            has_header=has_header,
            new_columns=columns,
            infer_schema=False,
            separator=separator,
            raise_if_empty=False,
        )
    except pl.exceptions.PolarsError as exc:
        line = _ragged_line(data, len(columns), separator)
        if line is not None:
            line += first - 1 - (1 if has_header else 0)
        raise IngestError(source, f"cannot parse CSV: {str(exc).splitlines()[0]}", line) from None
    if has_header and df.width != len(columns):
        raise IngestError(source, f"expected {len(columns)} columns {columns}, found {df.width}", 1)
    return df.with_row_index("line", offset=first)


def read_first_line(path: Path, member_suffix: str = ".csv") -> bytes:
    """The first line of a plain, gzip or single-member zip file (empty if unreadable)."""
    try:
        for _, data, _ in iter_line_batches(path, 1, member_suffix=member_suffix):
            return data
    except IngestError:
        return b""
    return b""


def header_of(data: bytes) -> list[str]:
    """The first line's comma-separated fields, stripped."""
    head = data.split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return [f.strip() for f in head.split(",")]


def _ragged_line(data: bytes, width: int, separator: str) -> int | None:
    # Only on the error path: find the first line whose field count is wrong.
    sep = separator.encode()
    for i, raw in enumerate(data.splitlines(), start=1):
        if raw.strip() and raw.count(sep) + 1 != width:
            return i
    return None
