"""Pre-trade risk: every decision is checked against the limits before any order exists.

The rules are plain functions of an order, the market and the portfolio, so each one is
unit-tested on its own; :class:`RiskEngine` holds the only state the rules need (recent
order times and the kill switch) and applies them in a fixed order. A rejection names
the rule and the numbers; an approval says which rules were waived and why.

Risk-reducing orders (flattening, or shrinking a position without flipping it) pass
every limit except the order-rate limit: a limit must never trap a trader in a losing
position, but a runaway loop must still be stopped.
"""

import collections
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from tapereader.core.tomlfile import read_tables

_NonNeg = Annotated[float, msgspec.Meta(ge=0.0)]
_Pos = Annotated[float, msgspec.Meta(gt=0.0)]


class RiskConfigError(ValueError):
    """A risk limits file that cannot be used; the message names the file and the key."""


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits from ``config/risk.toml``; money in the account currency."""

    max_position: dict[str, _NonNeg]
    """Largest absolute position per instrument id, in units; ``"*"`` is the default."""
    max_notional_per_instrument: _Pos
    max_total_notional: _Pos
    max_orders_per_minute: Annotated[int, msgspec.Meta(gt=0)]
    daily_loss_limit: _Pos
    max_drawdown: _Pos
    max_spread_bps: _Pos
    stale_after_ms: _Pos
    min_confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]

    def position_limit(self, instrument_id: str) -> float:
        """The position limit of one instrument (its own, else the ``"*"`` default)."""
        if instrument_id in self.max_position:
            return self.max_position[instrument_id]
        if "*" in self.max_position:
            return self.max_position["*"]
        raise RiskConfigError(f"no max_position for {instrument_id} and no '*' default")


def load_limits(path: str | Path) -> RiskLimits:
    """Read and validate a risk limits TOML file (table ``[limits]``)."""
    raw = read_tables(path, ["limits"], RiskConfigError)
    try:
        return msgspec.convert(raw["limits"], RiskLimits)
    except msgspec.ValidationError as exc:
        # msgspec names the key as `$.field`; say it the way the file does.
        raise RiskConfigError(f"{path}: [limits] {str(exc).replace('$.', 'limits.')}") from exc


class OrderIntent(msgspec.Struct, frozen=True, kw_only=True):
    """What a decision wants: move the position of one instrument to ``target``."""

    instrument_id: str
    action: Literal["BUY", "SELL", "FLATTEN"]
    target: float
    reference_price: _Pos
    confidence: float
    ts_ns: int


class MarketView(msgspec.Struct, frozen=True, kw_only=True):
    """The latest top of book of the instrument."""

    bid: float
    ask: float
    ts_last_ns: int


class PortfolioView(msgspec.Struct, frozen=True, kw_only=True):
    """Positions (signed units), marks, and today's and lifetime P&L."""

    positions: dict[str, float]
    marks: dict[str, float]
    pnl_today: float
    equity: float
    peak_equity: float


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """Approved, or rejected by ``rule`` with the ``observed`` value against its ``limit``."""

    approved: bool
    rule: str | None = None
    observed: float | None = None
    limit: float | None = None
    detail: str = ""


APPROVED = Verdict(approved=True)


def reduces_risk(current: float, target: float) -> bool:
    """True when ``target`` shrinks the position towards flat without flipping it."""
    if target == 0.0:
        return current != 0.0
    return abs(target) < abs(current) and (target > 0) == (current > 0)


# --- the rules, one function each -------------------------------------------------------
# Each returns None when the order passes, else the rejection.


def check_drawdown(p: PortfolioView, limits: RiskLimits) -> Verdict | None:
    drawdown = p.peak_equity - p.equity
    if drawdown >= limits.max_drawdown:
        return Verdict(
            approved=False,
            rule="kill_switch",
            observed=drawdown,
            limit=limits.max_drawdown,
            detail="drawdown from peak equity",
        )
    return None


def check_daily_loss(p: PortfolioView, limits: RiskLimits) -> Verdict | None:
    if -p.pnl_today >= limits.daily_loss_limit:
        return Verdict(
            approved=False,
            rule="daily_loss",
            observed=-p.pnl_today,
            limit=limits.daily_loss_limit,
            detail="loss since the UTC day began",
        )
    return None


def check_stale(o: OrderIntent, m: MarketView, limits: RiskLimits) -> Verdict | None:
    age_ms = (o.ts_ns - m.ts_last_ns) / 1e6
    if age_ms > limits.stale_after_ms:
        return Verdict(
            approved=False,
            rule="stale_data",
            observed=age_ms,
            limit=limits.stale_after_ms,
            detail="ms since the last tick",
        )
    return None


def check_spread(m: MarketView, limits: RiskLimits) -> Verdict | None:
    mid = (m.bid + m.ask) / 2
    if not (m.bid > 0 and m.ask > 0):
        return Verdict(approved=False, rule="max_spread", detail="no two-sided market")
    spread_bps = (m.ask - m.bid) / mid * 1e4
    if spread_bps > limits.max_spread_bps:
        return Verdict(
            approved=False,
            rule="max_spread",
            observed=spread_bps,
            limit=limits.max_spread_bps,
            detail="bps of mid",
        )
    return None


def check_confidence(o: OrderIntent, limits: RiskLimits) -> Verdict | None:
    if o.confidence < limits.min_confidence:
        return Verdict(
            approved=False,
            rule="min_confidence",
            observed=o.confidence,
            limit=limits.min_confidence,
        )
    return None


def check_position(o: OrderIntent, limits: RiskLimits) -> Verdict | None:
    limit = limits.position_limit(o.instrument_id)
    if abs(o.target) > limit:
        return Verdict(
            approved=False, rule="max_position", observed=abs(o.target), limit=limit, detail="units"
        )
    return None


def check_notional(o: OrderIntent, p: PortfolioView, limits: RiskLimits) -> Verdict | None:
    own = abs(o.target) * o.reference_price
    if own > limits.max_notional_per_instrument:
        return Verdict(
            approved=False,
            rule="max_notional",
            observed=own,
            limit=limits.max_notional_per_instrument,
            detail=o.instrument_id,
        )
    others = sum(
        abs(qty) * p.marks.get(instrument, 0.0)
        for instrument, qty in p.positions.items()
        if instrument != o.instrument_id
    )
    if others + own > limits.max_total_notional:
        return Verdict(
            approved=False,
            rule="max_total_notional",
            observed=others + own,
            limit=limits.max_total_notional,
            detail="all instruments",
        )
    return None


class RiskEngine:
    """The limits plus the state they need: order times and the kill switch."""

    def __init__(self, limits: RiskLimits) -> None:
        self.limits = limits
        self._orders: collections.deque[int] = collections.deque()
        self.kill_switch_tripped = False

    def check(self, o: OrderIntent, m: MarketView, p: PortfolioView) -> Verdict:
        """Approve or reject one order intent; an approval counts towards the rate limit.

        The kill switch is looked at first: a drawdown past the limit must trip it even
        while the order rate is what would refuse the order anyway.
        """
        reducing = reduces_risk(p.positions.get(o.instrument_id, 0.0), o.target)
        verdict = None if reducing else self._kill_switch(p)
        if verdict is None:
            verdict = self._rate(o)
        if verdict is None and not reducing:
            verdict = self._opening_rules(o, m, p)
        if verdict is not None:
            return verdict
        self._orders.append(o.ts_ns)
        return APPROVED

    def reset_kill_switch(self) -> None:
        """Allow new risk again after a trader reviewed the drawdown."""
        self.kill_switch_tripped = False

    def _rate(self, o: OrderIntent) -> Verdict | None:
        window_start = o.ts_ns - 60_000_000_000
        while self._orders and self._orders[0] <= window_start:
            self._orders.popleft()
        if len(self._orders) >= self.limits.max_orders_per_minute:
            return Verdict(
                approved=False,
                rule="order_rate",
                observed=len(self._orders) + 1,
                limit=self.limits.max_orders_per_minute,
                detail="orders per minute",
            )
        return None

    def _kill_switch(self, p: PortfolioView) -> Verdict | None:
        if self.kill_switch_tripped:
            return Verdict(
                approved=False,
                rule="kill_switch",
                detail="tripped earlier: only risk-reducing orders until reset",
            )
        tripped = check_drawdown(p, self.limits)
        if tripped is not None:
            self.kill_switch_tripped = True
        return tripped

    def _opening_rules(self, o: OrderIntent, m: MarketView, p: PortfolioView) -> Verdict | None:
        limits = self.limits
        verdicts = (
            check_daily_loss(p, limits),
            check_stale(o, m, limits),
            check_spread(m, limits),
            check_confidence(o, limits),
            check_position(o, limits),
            check_notional(o, p, limits),
        )
        return next((v for v in verdicts if v is not None), None)
