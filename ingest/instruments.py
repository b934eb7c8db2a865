"""Instrument definitions for what the data holds, built in and user-declared (TOML).

A spec is plain data (a msgspec Struct) so users can declare instruments in TOML with the
same fields; :meth:`InstrumentSpec.to_nautilus` turns it into a Nautilus instrument.
Loaders find a spec by venue and raw symbol (``BINANCE``/``BTCUSDT``) through
:class:`InstrumentRegistry`.
"""

import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import msgspec
from nautilus_trader.model.currencies import Currency
from nautilus_trader.model.identifiers import InstrumentId, Symbol
from nautilus_trader.model.instruments import CryptoPerpetual, CurrencyPair, Instrument
from nautilus_trader.model.objects import Money, Price, Quantity


class InstrumentSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """One tradable instrument; decimals are strings so TOML keeps them exact."""

    id: str
    kind: Literal["crypto_perpetual", "currency_pair"]
    raw_symbol: str
    base: str
    quote: str
    settlement: str | None = None
    is_inverse: bool = False
    price_precision: int
    size_precision: int
    price_increment: str
    size_increment: str
    lot_size: str | None = None
    min_quantity: str | None = None
    max_quantity: str | None = None
    min_notional: str | None = None
    maker_fee: str = "0"
    taker_fee: str = "0"
    margin_init: str = "0"
    margin_maint: str = "0"

    @property
    def venue(self) -> str:
        """The venue part of ``id`` (``BINANCE`` in ``BTCUSDT-PERP.BINANCE``)."""
        return self.id.rsplit(".", 1)[1]

    def check(self) -> None:
        """Raise ``ValueError`` naming the field when the spec is inconsistent."""
        if "." not in self.id:
            raise ValueError(f"id {self.id!r} must look like SYMBOL.VENUE")
        for name in ("price_precision", "size_precision"):
            if not 0 <= getattr(self, name) <= 16:
                raise ValueError(f"{name} must be within 0..16")
        for name, prec in (
            ("price_increment", self.price_precision),
            ("size_increment", self.size_precision),
        ):
            value = _decimal(getattr(self, name), name)
            if value <= 0:
                raise ValueError(f"{name} must be positive")
            if -value.normalize().as_tuple().exponent > prec:
                raise ValueError(f"{name} {value} has more decimals than its precision {prec}")
        for name in ("maker_fee", "taker_fee", "margin_init", "margin_maint"):
            _decimal(getattr(self, name), name)
        for name in ("base", "quote", "settlement"):
            code = getattr(self, name)
            if code is not None and Currency.from_str(code, strict=True) is None:
                raise ValueError(f"{name}: unknown currency {code!r}")

    def to_nautilus(self) -> Instrument:
        """The Nautilus instrument (``ts_event``/``ts_init`` 0: definitions are timeless)."""
        self.check()
        common = dict(
            instrument_id=InstrumentId.from_str(self.id),
            raw_symbol=Symbol(self.raw_symbol),
            base_currency=Currency.from_str(self.base),
            quote_currency=Currency.from_str(self.quote),
            price_precision=self.price_precision,
            size_precision=self.size_precision,
            price_increment=Price(Decimal(self.price_increment), self.price_precision),
            size_increment=Quantity(Decimal(self.size_increment), self.size_precision),
            ts_event=0,
            ts_init=0,
            min_quantity=self._qty(self.min_quantity),
            max_quantity=self._qty(self.max_quantity),
            min_notional=(
                Money(Decimal(self.min_notional), Currency.from_str(self.quote))
                if self.min_notional
                else None
            ),
            margin_init=Decimal(self.margin_init),
            margin_maint=Decimal(self.margin_maint),
            maker_fee=Decimal(self.maker_fee),
            taker_fee=Decimal(self.taker_fee),
        )
        lot = self._qty(self.lot_size)
        if self.kind == "crypto_perpetual":
            return CryptoPerpetual(
                settlement_currency=Currency.from_str(self.settlement or self.quote),
                is_inverse=self.is_inverse,
                lot_size=lot or Quantity.from_int(1),
                **common,
            )
        return CurrencyPair(lot_size=lot, **common)

    def _qty(self, text: str | None) -> Quantity | None:
        return Quantity(Decimal(text), self.size_precision) if text else None


def _decimal(text: str, name: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name}: {text!r} is not a decimal number") from None


# Binance USD-M: tick/step/min-notional from exchangeInfo (tickSize "0.10" for BTCUSDT gives
# precision 2 as in Nautilus's Binance adapter; the 2020 Tardis file still has 0.01 ticks),
# fees are the regular-user (VIP 0) USD-M rates. FX venues charge through the spread.
BUILTIN_SPECS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec(
        id="BTCUSDT-PERP.BINANCE",
        kind="crypto_perpetual",
        raw_symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        settlement="USDT",
        price_precision=2,
        size_precision=3,
        price_increment="0.10",
        size_increment="0.001",
        min_quantity="0.001",
        max_quantity="1000",
        min_notional="100",
        maker_fee="0.0002",
        taker_fee="0.0005",
        margin_init="0.05",
        margin_maint="0.025",
    ),
    InstrumentSpec(
        id="ETHUSDT-PERP.BINANCE",
        kind="crypto_perpetual",
        raw_symbol="ETHUSDT",
        base="ETH",
        quote="USDT",
        settlement="USDT",
        price_precision=2,
        size_precision=3,
        price_increment="0.01",
        size_increment="0.001",
        min_quantity="0.001",
        max_quantity="10000",
        min_notional="20",
        maker_fee="0.0002",
        taker_fee="0.0005",
        margin_init="0.05",
        margin_maint="0.025",
    ),
    InstrumentSpec(
        id="EUR/USD.FXCM",
        kind="currency_pair",
        raw_symbol="EUR/USD",
        base="EUR",
        quote="USD",
        price_precision=5,
        size_precision=0,
        price_increment="0.00001",
        size_increment="1",
        lot_size="1000",
        min_quantity="1000",
        margin_init="0.02",
        margin_maint="0.02",
    ),
    InstrumentSpec(
        id="EUR/USD.OANDA",
        kind="currency_pair",
        raw_symbol="EUR/USD",
        base="EUR",
        quote="USD",
        price_precision=5,
        size_precision=0,
        price_increment="0.00001",
        size_increment="1",
        lot_size="1",
        min_quantity="1",
        margin_init="0.02",
        margin_maint="0.02",
    ),
    # FTX BTC-PERP: price increment 1 USD, size increment 0.0001 BTC, tier-1 fees.
    InstrumentSpec(
        id="BTC-PERP.FTX",
        kind="crypto_perpetual",
        raw_symbol="BTC-PERP",
        base="BTC",
        quote="USD",
        settlement="USD",
        price_precision=0,
        size_precision=4,
        price_increment="1",
        size_increment="0.0001",
        min_quantity="0.0001",
        maker_fee="0.0002",
        taker_fee="0.0007",
        margin_init="0.05",
        margin_maint="0.03",
    ),
)


def _normalise(symbol: str) -> str:
    # Sources spell one pair many ways: "eurusd" (Lean), "EUR/USD", "BTCUSDT", "btcusdt".
    return symbol.upper().replace("/", "").replace("_", "")


class InstrumentFile(msgspec.Struct, forbid_unknown_fields=True):
    """The layout of an instruments TOML file: ``[[instrument]]`` tables."""

    instrument: list[InstrumentSpec] = []


class InstrumentRegistry:
    """Instrument specs by id and by (venue, raw symbol)."""

    def __init__(self, specs: tuple[InstrumentSpec, ...] | list[InstrumentSpec] = BUILTIN_SPECS):
        self._by_id: dict[str, InstrumentSpec] = {}
        self._by_symbol: dict[tuple[str, str], InstrumentSpec] = {}
        self._built: dict[str, Instrument] = {}
        for spec in specs:
            self.add(spec)

    def add(self, spec: InstrumentSpec) -> None:
        """Declare (or override) an instrument."""
        spec.check()
        self._by_id[spec.id] = spec
        self._by_symbol[(spec.venue, _normalise(spec.raw_symbol))] = spec
        self._built.pop(spec.id, None)

    def load_toml(self, path: str | Path) -> None:
        """Add every ``[[instrument]]`` of a TOML file; errors name the file and entry."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
            file = msgspec.convert(raw, InstrumentFile)
        except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        for i, spec in enumerate(file.instrument):
            try:
                self.add(spec)
            except ValueError as exc:
                raise ValueError(f"{path}: instrument[{i}] ({spec.id}): {exc}") from None

    def resolve(self, venue: str, raw_symbol: str) -> InstrumentSpec | None:
        """The spec for a venue's raw symbol, or None when undeclared."""
        return self._by_symbol.get((venue.upper(), _normalise(raw_symbol)))

    def get(self, instrument_id: str) -> InstrumentSpec | None:
        """The spec with this id, or None."""
        return self._by_id.get(instrument_id)

    def nautilus(self, instrument_id: str) -> Instrument:
        """The (cached) Nautilus instrument for a declared id."""
        if instrument_id not in self._built:
            self._built[instrument_id] = self._by_id[instrument_id].to_nautilus()
        return self._built[instrument_id]


def default_registry(toml_paths: list[str | Path] | None = None) -> InstrumentRegistry:
    """Built-in instruments plus those declared in the given TOML files."""
    registry = InstrumentRegistry()
    for path in toml_paths or []:
        registry.load_toml(path)
    return registry
