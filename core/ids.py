"""Event ids for one run: random in live trading, reproducible in backtests.

Both kinds are version-7 UUIDs whose leading 48 bits are a millisecond timestamp, so the
store's primary-key index stays append-mostly. A backtest takes the timestamp from the
exchange time of the event and the rest from a hash of a seed (the run id and the emitting
component) and a counter: running the same backtest with the same run id twice produces
the same ids, event for event, and appending it again is a no-op (appends are idempotent
by id). Live runs use :func:`~tapereader.core.events.new_event_id` (wall clock, random).
"""

import functools
import hashlib
import uuid

from tapereader.core.events import new_event_id


@functools.lru_cache(maxsize=1024)
def _bits42(text: str) -> int:
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=b"tapereader-ids").digest()
    return int.from_bytes(digest, "big") >> 22


_UUID = uuid.UUID
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown


def _uuid7(ms: int, rand: int) -> uuid.UUID:
    """A version-7 UUID from a millisecond time and the low 74 bits of ``rand``."""
    value = (ms & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64
    value |= 0b10 << 62 | rand & 0x3FFF_FFFF_FFFF_FFFF
    # What UUID(int=value) builds, without its argument parsing and range check (the value
    # is 128 bits by construction): half a microsecond less, and there are two ids per tick.
    u = _new(_UUID)
    _set(u, "int", value)
    _set(u, "is_safe", _UNKNOWN)
    return u


class EventIds:
    """Hands out event ids: ``EventIds.seeded(seed)`` reproducible, ``EventIds.random()``
    fresh ones."""

    __slots__ = ("_count", "_seed")

    def __init__(self, seed: str | None) -> None:
        # The seed's hash above a 32-bit counter fills the id's random bits: unique within
        # a run (up to 2**32 events per component), distinct across seeds but for a 2**-42
        # chance, and a few integer operations per id instead of a hash.
        self._seed = None if seed is None else _bits42(seed) << 32
        self._count = 0

    @classmethod
    def seeded(cls, seed: str) -> "EventIds":
        """Reproducible ids; ``seed`` must differ between components and between runs."""
        if not seed:
            raise ValueError("a seeded EventIds needs a non-empty seed (run id and component)")
        return cls(seed)

    @classmethod
    def random(cls) -> "EventIds":
        return cls(None)

    @property
    def reproducible(self) -> bool:
        return self._seed is not None

    def next(self, ts_ns: int) -> uuid.UUID:
        """The id of the next event, which happened at exchange time ``ts_ns``."""
        if self._seed is None:
            return new_event_id()
        self._count += 1
        return _uuid7(ts_ns // 1_000_000, self._seed | (self._count & 0xFFFF_FFFF))


def feature_row_id(instrument_id: str, seq: int, ts_ns: int) -> uuid.UUID:
    """The id of a feature row: the ``seq``-th accepted event of ``instrument_id``, at
    exchange time ``ts_ns``. Rows are not stored (there is one per tick); the id lets a
    signal name the row, and so the tick, it was computed from."""
    return _uuid7(ts_ns // 1_000_000, _bits42(instrument_id) << 32 | (seq & 0xFFFF_FFFF))
