"""One public day of Binance data (data.binance.vision), downloaded and verified.

``download_day`` fetches the daily archive zips of a USD-M futures symbol (by default the
BTCUSDT ``bookTicker`` and ``trades`` of 2024-08-08, which ``tapereader ingest`` reads as
they are) into a cache folder. Each zip is checked against the SHA-256 in the ``.CHECKSUM``
file the site publishes beside it. A zip is streamed to a temporary name and renamed only
once verified, so a cut download never leaves a file that looks complete; the checksum file
is kept beside it, so a later run verifies the cached zip without the network and skips it.

Errors are :class:`PublicDataError`, whose message names the URL or file and the problem.
Only the standard library is used (urllib).
"""

import hashlib
import http.client
import os
import re
import socket
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

BASE_URL = "https://data.binance.vision"
ARCHIVE_PATH = "data/futures/um/daily/{kind}/{symbol}/{symbol}-{kind}-{day}.zip"
SYMBOL = "BTCUSDT"
DAY = "2024-08-08"
KINDS = ("bookTicker", "trades")
DEFAULT_CACHE = Path("var/public")
TIMEOUT_S = 30.0  # per connect and per read: a stalled transfer fails instead of hanging
CHUNK = 1 << 20
CHECKSUM_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")

Progress = Callable[[str], None]


class PublicDataError(RuntimeError):
    """A public archive that could not be fetched or verified; names the URL or file."""


def archive_name(kind: str, symbol: str = SYMBOL, day: str = DAY) -> str:
    """The zip's file name, for example ``BTCUSDT-trades-2024-08-08.zip``."""
    return f"{symbol}-{kind}-{day}.zip"


def archive_url(kind: str, base_url: str = BASE_URL, symbol: str = SYMBOL, day: str = DAY) -> str:
    """The zip's URL under ``base_url`` (its ``.CHECKSUM`` is the same URL plus that suffix)."""
    path = ARCHIVE_PATH.format(kind=kind, symbol=symbol, day=day)
    return f"{base_url.rstrip('/')}/{path}"


def archive_urls(
    base_url: str = BASE_URL, symbol: str = SYMBOL, day: str = DAY, kinds: Sequence[str] = KINDS
) -> list[str]:
    """The zip URLs of one day, one per kind."""
    return [archive_url(k, base_url, symbol, day) for k in kinds]


def download_day(
    cache: Path = DEFAULT_CACHE,
    *,
    base_url: str = BASE_URL,
    symbol: str = SYMBOL,
    day: str = DAY,
    kinds: Sequence[str] = KINDS,
    timeout: float = TIMEOUT_S,
    progress: Progress | None = None,
) -> list[Path]:
    """Fetch and verify one day's archives into ``cache``; the zips' paths, in ``kinds`` order.

    Files already in ``cache`` that match their checksum are not fetched again.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    return [
        fetch_archive(archive_url(k, base_url, symbol, day), cache, timeout, progress)
        for k in kinds
    ]


def fetch_archive(
    url: str, cache: Path, timeout: float = TIMEOUT_S, progress: Progress | None = None
) -> Path:
    """Fetch the zip at ``url`` and its ``.CHECKSUM`` into ``cache`` unless already verified."""
    say = progress or (lambda _msg: None)
    name = url.rsplit("/", 1)[-1]
    target = cache / name
    kept = cache / (name + ".CHECKSUM")
    if target.exists() and kept.exists():
        expected = _parse_checksum(kept.read_text(errors="replace"), name, str(kept))
        if _sha256(target) == expected:
            say(f"{name}: already in {cache}, checksum verified")
            return target
        # A cached file that no longer matches is fetched again rather than trusted.
        say(f"{name}: cached copy does not match {kept.name}; fetching it again")
    checksum_text = _get_small(url + ".CHECKSUM", timeout)
    expected = _parse_checksum(checksum_text, name, url + ".CHECKSUM")
    if target.exists() and _sha256(target) == expected:
        _write_atomic(kept, checksum_text.encode())
        say(f"{name}: already in {cache}, checksum verified")
        return target
    _download_verified(url, target, expected, timeout, say)
    _write_atomic(kept, checksum_text.encode())
    return target


def _download_verified(
    url: str, target: Path, expected: str, timeout: float, say: Progress
) -> None:
    name = target.name
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    part = Path(tmp)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as response:
            total = int(response.headers.get("Content-Length") or 0)
            say(f"{name}: downloading {_size(total) if total else 'size unknown'} from {url}")
            got, next_report = 0, 0.25
            while chunk := _read(response, url, timeout):
                out.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                if total and got / total >= next_report:
                    say(f"{name}: {got / total:.0%} of {_size(total)}")
                    next_report += 0.25
            if total and got != total:
                raise PublicDataError(f"{url}: download cut short after {got} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != expected:
            raise PublicDataError(
                f"{name}: checksum mismatch: downloaded from {url} has SHA-256 {actual}, "
                f"{name}.CHECKSUM says {expected}; the file was not kept"
            )
        if not zipfile.is_zipfile(part):
            raise PublicDataError(f"{url}: not a zip archive (the checksum matched); not kept")
        os.replace(part, target)
        say(f"{name}: verified (SHA-256 {actual[:12]}...), saved as {target}")
    finally:
        part.unlink(missing_ok=True)


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": "tapereader"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        what = "not found" if exc.code == 404 else "refused by the server"
        raise PublicDataError(f"{url}: {what} (HTTP {exc.code} {exc.reason})") from exc
    except urllib.error.URLError as exc:
        raise PublicDataError(f"{url}: {_network_problem(url, exc.reason, timeout)}") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise PublicDataError(f"{url}: {_network_problem(url, exc, timeout)}") from exc


def _read(response: http.client.HTTPResponse, url: str, timeout: float) -> bytes:
    try:
        return response.read(CHUNK)
    except http.client.IncompleteRead as exc:
        raise PublicDataError(f"{url}: download cut short ({exc})") from exc
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise PublicDataError(f"{url}: {_network_problem(url, exc, timeout)}") from exc


def _get_small(url: str, timeout: float) -> str:
    with _open(url, timeout) as response:
        # A checksum line is about 100 bytes; reading at most 64 KiB bounds a wrong answer.
        data = _read(response, url, timeout)[: 1 << 16]
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise PublicDataError(f"{url}: not a checksum file (not ASCII text)") from None


def _network_problem(url: str, reason: object, timeout: float) -> str:
    host = urlsplit(url).hostname or url
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve {host} (no network or DNS failure: {reason})"
    if isinstance(reason, ConnectionRefusedError):
        return f"connection to {host} refused"
    if isinstance(reason, TimeoutError):
        return f"no answer from {host} within {timeout:g} s (timed out)"
    if isinstance(reason, ConnectionError):
        return f"connection to {host} failed ({reason})"
    return f"network error ({reason})"


def _parse_checksum(text: str, name: str, origin: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    match = CHECKSUM_LINE.match(lines[0]) if len(lines) == 1 else None
    if match is None:
        shown = text[:80].strip() or "empty"
        raise PublicDataError(
            f"{origin}: not a checksum file (expected '<sha256>  {name}', found {shown!r})"
        )
    if match.group(2) != name:
        raise PublicDataError(f"{origin}: checksum is for {match.group(2)!r}, not {name!r}")
    return match.group(1).lower()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n:,} bytes"
