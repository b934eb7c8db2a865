"""``tapereader demo`` without a data folder: the public Binance day, fetched and verified.

No internet here: a ``http.server`` on 127.0.0.1 plays data.binance.vision, serving archive
zips built from the real BTCUSDT feed of the same day (2024-08-08, 23:54-24:00 UTC, from
``../shared/data/market``) in the archive's column layout, with their ``.CHECKSUM`` files.
"""

import csv
import gzip
import hashlib
import http.server
import io
import json
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tapereader import public_data
from tapereader.cli import main
from tapereader.core.events import (
    DataIngested,
    ModelPromoted,
    RunCompleted,
    RunStarted,
    SignalGenerated,
)
from tapereader.core.models.registry import Registry
from tapereader.core.store import EventStore

FEED = "hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz"
TRADES = public_data.archive_name("trades")
QUOTES = public_data.archive_name("bookTicker")


def _archive_rows(market_data: Path) -> dict[str, list[list[str]]]:
    """The feed's trades and best bid/ask as archive rows (see ingest/binance_archive.py)."""
    rows: dict[str, list[list[str]]] = {"trades": [], "bookTicker": []}
    with gzip.open(market_data / FEED, "rt") as f:
        for line in f:
            message = json.loads(line.split(" ", 1)[1])
            d = message.get("data", {})
            if message.get("stream") == "btcusdt@trade":
                quote_qty = Decimal(d["p"]) * Decimal(d["q"])
                maker = "true" if d["m"] else "false"
                rows["trades"].append(
                    [str(d["t"]), d["p"], d["q"], str(quote_qty), str(d["T"]), maker]
                )
            elif message.get("stream") == "btcusdt@bookTicker":
                rows["bookTicker"].append(
                    [str(d["u"]), d["b"], d["B"], d["a"], d["A"], str(d["T"]), str(d["E"])]
                )
    return rows


def _publish(site: Path, kind: str, rows: list[list[str]]) -> Path:
    """Zip ``rows`` (with the archive's header) where the site keeps them, and its checksum."""
    from tapereader.ingest.binance_archive import COLUMNS

    name = public_data.archive_name(kind)
    folder = site / Path(public_data.archive_url(kind, "")).parent.relative_to("/")
    folder.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(COLUMNS[kind])
    writer.writerows(rows)
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name.replace(".zip", ".csv"), text.getvalue())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / (name + ".CHECKSUM")).write_text(f"{digest}  {name}\n")
    return path


@pytest.fixture(scope="module")
def feed_rows(market_data: Path) -> dict[str, list[list[str]]]:
    return _archive_rows(market_data)


@pytest.fixture(scope="module")
def small_site(
    feed_rows: dict[str, list[list[str]]], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A site with 3,000 rows of each kind."""
    site = tmp_path_factory.mktemp("site-small")
    for kind, rows in feed_rows.items():
        _publish(site, kind, rows[:3000])
    return site


class _Quiet(http.server.SimpleHTTPRequestHandler):
    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(site: Path, handler: type[http.server.BaseHTTPRequestHandler] | None = None):
    """Serve ``site`` on a free loopback port; (base URL, requested paths, server)."""
    requested: list[str] = []

    class Handler(handler or _Quiet):  # type: ignore[misc, valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(site), **kwargs)

    Handler.requested = requested
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", requested, server


@pytest.fixture
def served(small_site: Path) -> Iterator[tuple[str, list[str]]]:
    base, requested, server = _serve(small_site)
    yield base, requested
    server.shutdown()
    server.server_close()


def _leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir() if p.name.endswith(".part"))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_day_downloads_verified_and_is_not_fetched_again(
    served: tuple[str, list[str]], small_site: Path, tmp_path: Path
) -> None:
    base, requested = served
    cache = tmp_path / "cache"
    got = public_data.download_day(cache, base_url=base, timeout=10)
    assert [p.name for p in got] == [QUOTES, TRADES]
    for path in got:
        (source,) = small_site.rglob(path.name)
        assert path.read_bytes() == source.read_bytes()
        assert (cache / (path.name + ".CHECKSUM")).read_text() == (
            source.parent / (path.name + ".CHECKSUM")
        ).read_text()
    assert len(requested) == 4 and _leftovers(cache) == []
    # The second run verifies the cached zips against the kept checksums, offline.
    messages: list[str] = []
    assert public_data.download_day(cache, base_url=base, progress=messages.append) == got
    assert len(requested) == 4
    assert all("already in" in m and "verified" in m for m in messages), messages


def test_a_corrupted_cached_zip_is_fetched_again(
    served: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, requested = served
    cache = tmp_path / "cache"
    (quotes, _) = public_data.download_day(cache, base_url=base)
    good = quotes.read_bytes()
    quotes.write_bytes(good[:-10])
    public_data.download_day(cache, base_url=base)
    assert quotes.read_bytes() == good and len(requested) == 6


def test_a_checksum_mismatch_is_refused_naming_the_file(
    small_site: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = tmp_path_factory.mktemp("site-bad")
    (zip_path,) = small_site.rglob(TRADES)
    copy = site / zip_path.relative_to(small_site)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(zip_path.read_bytes())
    (copy.parent / (TRADES + ".CHECKSUM")).write_text(f"{'0' * 64}  {TRADES}\n")
    base, _, server = _serve(site)
    cache = tmp_path / "cache"
    try:
        with pytest.raises(public_data.PublicDataError) as err:
            public_data.download_day(cache, base_url=base, kinds=["trades"])
    finally:
        server.shutdown()
        server.server_close()
    assert f"{TRADES}: checksum mismatch" in str(err.value)
    assert list(cache.iterdir()) == []  # no zip, no checksum, no partial file


def test_a_cut_download_leaves_nothing_that_looks_complete(
    small_site: Path, tmp_path: Path
) -> None:
    class Cut(_Quiet):
        def do_GET(self) -> None:
            if not self.path.endswith(".zip"):
                return super().do_GET()
            local = Path(self.translate_path(self.path))
            data = local.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True

    base, _, server = _serve(small_site, Cut)
    cache = tmp_path / "cache"
    try:
        with pytest.raises(public_data.PublicDataError) as err:
            public_data.download_day(cache, base_url=base, kinds=["trades"], timeout=10)
    finally:
        server.shutdown()
        server.server_close()
    url = public_data.archive_url("trades", base)
    assert str(err.value).startswith(f"{url}: download cut short"), err.value
    assert list(cache.iterdir()) == []


def test_a_file_that_is_not_a_zip_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    url_path = Path(public_data.archive_url("trades", "")).relative_to("/")
    (site / url_path).parent.mkdir(parents=True)
    page = b"<html>maintenance</html>\n"
    (site / url_path).write_bytes(page)
    checksum = f"{hashlib.sha256(page).hexdigest()}  {TRADES}\n"
    (site / (str(url_path) + ".CHECKSUM")).write_text(checksum)
    base, _, server = _serve(site)
    try:
        with pytest.raises(public_data.PublicDataError) as err:
            public_data.download_day(tmp_path / "cache", base_url=base, kinds=["trades"])
    finally:
        server.shutdown()
        server.server_close()
    assert str(err.value).startswith(f"{public_data.archive_url('trades', base)}: not a zip")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_missing_file_a_refused_connection_and_a_timeout_name_the_url(
    served: tuple[str, list[str]], tmp_path: Path
) -> None:
    base, _ = served
    with pytest.raises(public_data.PublicDataError) as err:
        public_data.download_day(tmp_path / "c", base_url=base, day="2024-08-09")
    url = public_data.archive_url("bookTicker", base, day="2024-08-09") + ".CHECKSUM"
    assert str(err.value) == f"{url}: not found (HTTP 404 File not found)"
    closed = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(public_data.PublicDataError) as err:
        public_data.download_day(tmp_path / "c", base_url=closed, timeout=5)
    url = public_data.archive_url("bookTicker", closed) + ".CHECKSUM"
    assert str(err.value) == f"{url}: connection to 127.0.0.1 refused"
    # A server that takes the connection and never answers: the timeout ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mute = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(public_data.PublicDataError) as err:
            public_data.download_day(tmp_path / "c", base_url=mute, timeout=0.5)
    url = public_data.archive_url("bookTicker", mute) + ".CHECKSUM"
    assert str(err.value) == f"{url}: no answer from 127.0.0.1 within 0.5 s (timed out)"


def test_the_demo_without_data_or_network_exits_2_saying_what_failed(
    tmp_path: Path, capsys
) -> None:
    closed = f"http://127.0.0.1:{_closed_port()}"
    cache = tmp_path / "public"
    argv = ["demo", "--store", str(tmp_path / "e.db"), "--data", str(tmp_path / "no")]
    assert main([*argv, "--public-url", closed, "--public-cache", str(cache)]) == 2
    out = capsys.readouterr().out
    assert f"real market data not found at {tmp_path / 'no'}" in out
    tried = "Tried to download one public Binance day (BTCUSDT USD-M futures, 2024-08-08)"
    assert f"{tried} into {cache}, which failed:" in out
    url = public_data.archive_url("bookTicker", closed)
    assert f"{url}.CHECKSUM: connection to 127.0.0.1 refused" in out
    assert f"curl -fO {url} -O {url}.CHECKSUM" in out  # how to get it by hand
    assert not (tmp_path / "e.db").exists()  # nothing ran, nothing recorded

    assert main([*argv, "--no-download", "--public-cache", str(cache)]) == 2
    out = capsys.readouterr().out
    assert "Did not try to download the public Binance day (--no-download)" in out
    assert public_data.archive_url("trades") in out


@pytest.mark.timeout(300)  # about a minute alone; more on a busy machine
def test_the_demo_runs_on_a_downloaded_day(
    feed_rows: dict[str, list[list[str]]],
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys,
) -> None:
    site = tmp_path_factory.mktemp("site-full")
    for kind, rows in feed_rows.items():
        _publish(site, kind, rows)
    base, _, server = _serve(site)
    store = tmp_path / "var" / "events.db"
    argv = [
        "demo",
        "--store",
        str(store),
        "--catalog",
        str(tmp_path / "catalog"),
        "--data",
        str(tmp_path / "no"),
        "--public-url",
        base,
        # The served day is the feed's last six minutes: train on four, backtest two.
        "--public-window",
        "2024-08-08T23:54:00,2024-08-08T23:58:00,2024-08-09T00:00:00",
        "--quick-training",
    ]
    try:
        assert main(argv) == 0
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    cache = tmp_path / "var" / "public"  # beside the store by default
    assert sorted(p.name for p in cache.glob("*.zip")) == [QUOTES, TRADES]
    with EventStore.open(store) as s:
        events = [r.event for r in s.read()]
    assert isinstance(events[0], RunStarted) and events[-1].status == "succeeded"
    ingested = [e for e in events if isinstance(e, DataIngested)]
    assert sum(e.rows_written.get("trades", 0) for e in ingested) == len(feed_rows["trades"])
    assert sum(e.rows_written.get("quotes", 0) for e in ingested) == len(feed_rows["bookTicker"])
    (promoted,) = [e for e in events if isinstance(e, ModelPromoted)]
    registry = Registry(tmp_path / "var" / "models")
    assert registry.active("BTCUSDT-PERP.BINANCE") == promoted.model_version
    (backtest,) = [
        e
        for e in events
        if isinstance(e, RunStarted) and e.source.component == "tapereader.backtest"
    ]
    assert backtest.parameters["in_sample"] == "no"
    (done,) = [e for e in events if isinstance(e, RunCompleted) and e.source == backtest.source]
    signals = [e for e in events if isinstance(e, SignalGenerated)]
    assert done.status == "succeeded" and done.summary["signals"] == len(signals) > 1_000
    assert {s.instrument_id for s in signals} == {"BTCUSDT-PERP.BINANCE"}
    (zmq_line,) = [line for line in out.splitlines() if "ZeroMQ subscriber on" in line]
    got = re.search(r"([\d,]+) SignalGenerated; lost 0; (\d+) sent before it joined", zmq_line)
    assert got and int(got[1].replace(",", "")) + int(got[2]) >= len(signals), zmq_line
    report = tmp_path / "var" / "reports" / backtest.source.run_id / "report.html"
    assert report.is_file() and f"report: {report}" in out
    assert f"events: {store} (run {backtest.source.run_id})" in out
