"""Hypothesis strategies for every domain event, derived from the events' own schemas.

Deriving from ``msgspec.inspect`` means a field added to an event is covered by the
round-trip properties without touching this file.
"""

import msgspec.inspect as mi
from hypothesis import strategies as st

from tapereader.core.events import EVENT_TYPES, DomainEvent

_MAX = 1.7976931348623157e308
_INT64 = 2**63 - 1


def _float(t: mi.FloatType) -> st.SearchStrategy[float]:
    low = t.ge if t.ge is not None else t.gt if t.gt is not None else -_MAX
    high = t.le if t.le is not None else t.lt if t.lt is not None else _MAX
    return st.floats(
        min_value=low,
        max_value=high,
        exclude_min=t.gt is not None,
        exclude_max=t.lt is not None,
        allow_nan=False,
        allow_infinity=False,
    )


def for_type(t: mi.Type) -> st.SearchStrategy[object]:
    """A strategy producing valid values of one msgspec type."""
    match t:
        case mi.IntType():
            return st.integers(min_value=t.ge if t.ge is not None else -_INT64, max_value=_INT64)
        case mi.FloatType():
            return _float(t)
        case mi.StrType():
            return st.text(max_size=24)
        case mi.BoolType():
            return st.booleans()
        case mi.UUIDType():
            return st.uuids()
        case mi.NoneType():
            return st.none()
        case mi.LiteralType():
            return st.sampled_from(t.values)
        case mi.ListType():
            return st.lists(for_type(t.item_type), max_size=4)
        case mi.DictType():
            return st.dictionaries(for_type(t.key_type), for_type(t.value_type), max_size=4)
        case mi.UnionType():
            return st.one_of([for_type(member) for member in t.types])
        case mi.StructType():
            return st.builds(t.cls, **{f.name: for_type(f.type) for f in t.fields})
    raise TypeError(f"no strategy for {t!r}")


def events_of(cls: type[DomainEvent]) -> st.SearchStrategy[DomainEvent]:
    """Valid instances of one event class."""
    return for_type(mi.type_info(cls))  # type: ignore[return-value]


any_event: st.SearchStrategy[DomainEvent] = st.one_of([events_of(c) for c in EVENT_TYPES])
"""Valid instances of every event class."""

__all__ = ["any_event", "events_of", "for_type"]
