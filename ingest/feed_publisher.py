"""Publish recorded ticks from a ParquetDataCatalog on the tick-feed wire (``docs/FEED.md``).

The publisher binds an XPUB socket (a PUB socket that also tells the publisher what its
subscribers asked for), so a replay can wait until every instrument it is about to send has a
subscriber instead of losing the first ticks to ZeroMQ's slow-joiner gap.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import zmq
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import OrderBookDelta, OrderBookDeltas, QuoteTick, TradeTick
from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.core import tickwire

_AGGRESSOR = {
    AggressorSide.BUYER: "buyer",
    AggressorSide.SELLER: "seller",
    AggressorSide.NO_AGGRESSOR: "none",
}
_ACTION = {BookAction.ADD: "add", BookAction.UPDATE: "update", BookAction.DELETE: "delete"}
KINDS = ("quote", "trade", "book")


def to_message(data: Data) -> tickwire.TickMessage:
    """The wire message of a Nautilus quote, trade or book-delta batch."""
    iid = str(data.instrument_id)
    if isinstance(data, QuoteTick):
        return tickwire.Quote(
            instrument_id=iid,
            bid=str(data.bid_price),
            ask=str(data.ask_price),
            bid_size=str(data.bid_size),
            ask_size=str(data.ask_size),
            ts_event=data.ts_event,
            ts_init=data.ts_init,
        )
    if isinstance(data, TradeTick):
        return tickwire.Trade(
            instrument_id=iid,
            price=str(data.price),
            size=str(data.size),
            aggressor=_AGGRESSOR[data.aggressor_side],
            trade_id=str(data.trade_id),
            ts_event=data.ts_event,
            ts_init=data.ts_init,
        )
    if isinstance(data, OrderBookDeltas):
        deltas = [_book_delta(d) for d in data.deltas]
        first = data.deltas[0]
        return tickwire.Book(
            instrument_id=iid,
            deltas=deltas,
            snapshot=bool(first.flags & RecordFlag.F_SNAPSHOT),
            sequence=data.sequence,
            ts_event=data.ts_event,
            ts_init=data.ts_init,
        )
    raise TypeError(f"no wire message for {type(data).__name__}")


def _book_delta(d: OrderBookDelta) -> tickwire.BookDelta:
    if d.action == BookAction.CLEAR:
        return tickwire.BookDelta(action="clear")
    o = d.order
    return tickwire.BookDelta(
        action=_ACTION[d.action],
        side="bid" if o.side == OrderSide.BUY else "ask",
        price=str(o.price),
        size=str(o.size),
    )


def catalog_ticks(
    catalog: str | Path,
    instrument_ids: Sequence[str] | None = None,
    kinds: Sequence[str] = KINDS,
    limit: int | None = None,
) -> list[Data]:
    """The catalog's quotes, trades and book batches in exchange-time order.

    Sorted by ``ts_event`` (stable: equal times keep ``kinds`` order, then catalog order);
    book deltas are grouped into their venue updates by the ``F_LAST`` flag. ``limit`` keeps
    the first ``limit`` items.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {KINDS}")
    cat = ParquetDataCatalog(str(catalog))
    ids = list(instrument_ids) if instrument_ids else None
    items: list[Data] = []
    for kind in kinds:
        if kind == "quote":
            items.extend(cat.quote_ticks(instrument_ids=ids))
        elif kind == "trade":
            items.extend(cat.trade_ticks(instrument_ids=ids))
        else:
            items.extend(_batches(cat.order_book_deltas(instrument_ids=ids)))
    items.sort(key=lambda d: d.ts_event)
    return items if limit is None else items[:limit]


def _batches(deltas: Iterable[OrderBookDelta]) -> list[OrderBookDeltas]:
    # Per instrument: deltas of several instruments may interleave in the query result.
    pending: dict[object, list[OrderBookDelta]] = {}
    batches = []
    for delta in deltas:
        batch = pending.setdefault(delta.instrument_id, [])
        batch.append(delta)
        if delta.flags & RecordFlag.F_LAST:
            batches.append(OrderBookDeltas(delta.instrument_id, batch))
            del pending[delta.instrument_id]
    for iid, batch in pending.items():  # a file cut mid-update: keep what is there
        batches.append(OrderBookDeltas(iid, batch))
    return batches


def parse_speed(text: str) -> float | None:
    """``1x``, ``10x``, ``0.5x``: a factor of exchange time; ``max`` (None): no pacing."""
    if text == "max":
        return None
    try:
        factor = float(text.removesuffix("x"))
    except ValueError:
        factor = 0.0
    if not text.endswith("x") or not factor > 0:
        raise ValueError(f"speed {text!r}: expected a positive factor such as 1x or 10x, or max")
    return factor


@dataclass
class ReplayStats:
    """What a replay sent and how long it took."""

    published: int = 0
    seconds: float = 0.0
    first_ts_event: int = 0
    last_ts_event: int = 0


class FeedPublisher:
    """An XPUB socket bound at ``endpoint`` that sends tick-feed messages."""

    def __init__(self, endpoint: str, send_hwm: int = 1_000_000, linger_ms: int = 10_000) -> None:
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.XPUB)
        # A replay at max speed outruns any subscriber: queue rather than drop.
        self._socket.setsockopt(zmq.SNDHWM, send_hwm)
        self._socket.setsockopt(zmq.LINGER, linger_ms)
        self._socket.bind(endpoint)
        self._prefixes: set[str] = set()
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)

    def wait_for_subscribers(self, instrument_ids: Iterable[str], timeout: float) -> bool:
        """Wait until each instrument's topics have a subscriber; False on timeout."""
        topics = {tickwire.instrument_prefix(i) for i in instrument_ids}
        deadline = time.monotonic() + timeout
        while not all(any(t.startswith(p) for p in self._prefixes) for t in topics):
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0 or not self._socket.poll(left_ms):
                return False
            self._read_subscription()
        return True

    def _read_subscription(self) -> None:
        frame = self._socket.recv()
        prefix = frame[1:].decode(errors="replace")
        if frame[:1] == b"\x01":
            self._prefixes.add(prefix)
        else:
            self._prefixes.discard(prefix)

    def publish(self, message: tickwire.TickMessage) -> None:
        """Send one message, stamped with the wall-clock time of sending (``ts_sent``)."""
        message = msgspec.structs.replace(message, ts_sent=time.time_ns())
        self._socket.send_multipart(tickwire.encode(message))

    def send_frames(self, frames: Sequence[bytes]) -> None:
        """Send raw frames as they are (for testing receivers against bad input)."""
        self._socket.send_multipart(list(frames))

    def replay(self, ticks: Iterable[Data], speed: float | None = None) -> ReplayStats:
        """Send ``ticks`` in their order, paced at ``speed`` times exchange time (None: max)."""
        stats = ReplayStats()
        start = time.perf_counter()
        for data in ticks:
            if stats.published == 0:
                stats.first_ts_event = data.ts_event
            elif speed is not None:
                due = (data.ts_event - stats.first_ts_event) / 1e9 / speed
                ahead = due - (time.perf_counter() - start)
                if ahead > 0:
                    time.sleep(ahead)
            self.publish(to_message(data))
            stats.published += 1
            stats.last_ts_event = data.ts_event
        stats.seconds = time.perf_counter() - start
        return stats

    def close(self) -> None:
        """Flush (up to the linger time) and close."""
        self._socket.close()
        self._context.term()

    def __enter__(self) -> "FeedPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
