"""The portfolio ledger: average cost, round trips, marks, drawdown, the daily reset,
attribution, bad inputs, a cross-check against NautilusTrader's Position, and the
rebuild from stored events."""

import math
import random
import uuid
from decimal import Decimal

import msgspec
import pytest

from tapereader.core import events as ev
from tapereader.core.ledger import (
    ClosedTrade,
    Fill,
    Ledger,
    ledger_from_events,
    slippage_bps,
)
from tapereader.core.risk import PortfolioView

BTC, ETH = "BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"
DAY = 86_400 * 10**9
T = 1_723_161_255_000_000_000  # 2024-08-08 23:54:15 UTC
MIDNIGHT = (T // DAY + 1) * DAY


def fill(side: str = "BUY", qty: float = 1.0, px: float = 100.0, **kw: object) -> Fill:
    base: dict[str, object] = dict(
        instrument_id=BTC, side=side, quantity=qty, price=px, commission=0.0, ts_ns=T
    )
    return Fill(**{**base, **kw})  # type: ignore[arg-type]


def approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-9)


# --- accounting -----------------------------------------------------------------------


def test_long_round_trip() -> None:
    led = Ledger()
    assert led.apply_fill(fill("BUY", 2.0, 100.0, commission=0.2)) == []
    assert led.position(BTC) == 2.0 and led.avg_px(BTC) == 100.0
    (trade,) = led.apply_fill(fill("SELL", 2.0, 110.0, commission=0.22, ts_ns=T + 5))
    assert led.position(BTC) == 0.0 and led.avg_px(BTC) is None
    assert led.realized_pnl == approx(20.0 - 0.42)
    assert (trade.side, trade.quantity, trade.entry_px, trade.exit_px) == ("LONG", 2.0, 100, 110)
    assert trade.realized_pnl == approx(20.0 - 0.42) and trade.commission == approx(0.42)
    assert (trade.opened_ns, trade.closed_ns, trade.holding_ns) == (T, T + 5, 5)
    assert led.unrealized_pnl == 0.0 and led.exposure == 0.0


def test_short_round_trip() -> None:
    led = Ledger()
    led.apply_fill(fill("SELL", 1.5, 100.0, commission=0.1))
    assert led.position(BTC) == -1.5 and led.avg_px(BTC) == 100.0
    (trade,) = led.apply_fill(fill("BUY", 1.5, 90.0, commission=0.1))
    assert trade.side == "SHORT" and trade.realized_pnl == approx(15.0 - 0.2)
    assert led.realized_pnl == approx(15.0 - 0.2)
    # A short that loses: bought back higher.
    led.apply_fill(fill("SELL", 1.0, 100.0))
    (loss,) = led.apply_fill(fill("BUY", 1.0, 104.0))
    assert loss.realized_pnl == approx(-4.0) and led.realized_pnl == approx(15.0 - 0.2 - 4.0)


def test_partial_reduce_keeps_avg_and_the_lot_open() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 3.0, 100.0))
    assert led.apply_fill(fill("SELL", 1.0, 106.0)) == []  # the round trip is not over
    assert led.position(BTC) == 2.0 and led.avg_px(BTC) == 100.0
    assert led.realized_pnl == approx(6.0)
    (trade,) = led.apply_fill(fill("SELL", 2.0, 103.0))
    assert trade.quantity == 3.0 and trade.exit_px == approx(104.0)
    assert trade.realized_pnl == approx(12.0) and led.realized_pnl == approx(12.0)


def test_flip_through_zero_closes_then_opens_at_the_fill_price() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 1.0, 100.0, commission=1.0))
    (closed,) = led.apply_fill(fill("SELL", 3.0, 110.0, commission=3.0))
    assert led.position(BTC) == -2.0 and led.avg_px(BTC) == 110.0
    # Nautilus realizes the whole fill's commission at once...
    assert led.realized_pnl == approx(10.0 - 1.0 - 3.0)
    # ...while the round trip carries only the third of it that closed the long.
    assert closed.side == "LONG" and closed.quantity == 1.0
    assert closed.commission == approx(2.0) and closed.realized_pnl == approx(8.0)
    (short,) = led.apply_fill(fill("BUY", 2.0, 105.0, commission=2.0))
    assert short.side == "SHORT" and short.quantity == 2.0 and short.entry_px == 110.0
    assert short.commission == approx(4.0) and short.realized_pnl == approx(10.0 - 4.0)
    assert led.realized_pnl == approx(14.0) == closed.realized_pnl + short.realized_pnl


def test_adding_moves_the_average_cost() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 1.0, 100.0))
    led.apply_fill(fill("BUY", 3.0, 104.0))
    assert led.position(BTC) == 4.0 and led.avg_px(BTC) == approx(103.0)
    # Realized against the average (-2); the round trip is the first lot's own (+1).
    (first,) = led.apply_fill(fill("SELL", 1.0, 101.0))
    assert led.realized_pnl == approx(-2.0) and led.avg_px(BTC) == approx(103.0)
    assert (first.entry_px, first.quantity, first.realized_pnl) == (100.0, 1.0, approx(1.0))
    (second,) = led.apply_fill(fill("SELL", 3.0, 105.0))
    assert (second.entry_px, second.quantity, second.realized_pnl) == (104.0, 3.0, approx(3.0))
    # Once flat, the two ways agree.
    assert led.realized_pnl == approx(4.0) == first.realized_pnl + second.realized_pnl


def test_commissions_and_rebates_are_realized_when_paid() -> None:
    led = Ledger(starting_equity=1_000.0)
    led.apply_fill(fill("BUY", 1.0, 100.0, commission=0.5))
    assert led.realized_pnl == -0.5 and led.commissions == 0.5
    assert led.equity == 999.5 and led.drawdown == 0.5
    led.apply_fill(fill("SELL", 1.0, 100.0, commission=-0.2))  # a maker rebate
    assert led.commissions == approx(0.3) and led.realized_pnl == approx(-0.3)
    assert led.closed_trades[0].commission == approx(0.3)


def test_multiplier_scales_pnl_and_exposure() -> None:
    led = Ledger(multipliers={"ES": 50.0, "*": 1.0})
    led.apply_fill(fill("BUY", 2.0, 5_000.0, instrument_id="ES"))
    led.apply_fill(fill("BUY", 1.0, 100.0))  # covered by "*"
    led.mark("ES", 5_009.0, 5_011.0, T + 1)
    assert led.unrealized_pnl == approx(2 * 10 * 50)
    assert led.exposure == approx(2 * 5_010 * 50 + 100)
    (trade,) = led.apply_fill(fill("SELL", 2.0, 5_020.0, instrument_id="ES", ts_ns=T + 2))
    assert trade.realized_pnl == approx(2_000.0) and led.realized_pnl == approx(2_000.0)
    assert led.multiplier("ES") == 50.0 and led.multiplier("NQ") == 1.0


def test_unknown_instrument_is_rejected_when_multipliers_are_given() -> None:
    led = Ledger(multipliers={"ES": 50.0})
    with pytest.raises(ValueError, match=r"fill\.instrument_id 'NQ' is unknown"):
        led.apply_fill(fill(instrument_id="NQ"))
    assert led.positions == {} and led.ts_ns is None
    assert led.mark("NQ", 1.0, 2.0, T) is False and led.marks == {}
    with pytest.raises(ValueError, match=r"multipliers\['ES'\]"):
        Ledger(multipliers={"ES": 0.0})


# --- marks ----------------------------------------------------------------------------


def test_unrealized_from_marks_long_and_short() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 2.0, 100.0))
    led.apply_fill(fill("SELL", 1.0, 50.0, instrument_id=ETH))
    # Before any quote an instrument is marked at its last fill.
    assert led.marks == {BTC: 100.0, ETH: 50.0} and led.unrealized_pnl == 0.0
    assert led.mark(BTC, 104.0, 106.0, T + 1) and led.mark(ETH, 47.0, 47.0, T + 1)
    assert led.unrealized_pnl == approx(2 * 5.0 + 3.0)
    assert led.exposure == approx(2 * 105 + 47)
    # A later fill does not overwrite a quote's mark.
    led.apply_fill(fill("BUY", 1.0, 110.0, ts_ns=T + 2))
    assert led.marks[BTC] == 105.0 and led.avg_px(BTC) == approx(310 / 3)
    assert led.unrealized_pnl == approx(3 * (105 - 310 / 3) + 3.0)


def test_crossed_quotes_mark_at_mid_bad_quotes_are_ignored() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 1.0, 100.0))
    assert led.mark(BTC, 101.0, 99.0, T + 10)  # crossed: mid still 100
    assert led.marks[BTC] == 100.0
    for bid, ask in [(math.nan, 101.0), (100.0, math.inf), (0.0, 101.0), (-1.0, 101.0)]:
        assert led.mark(BTC, bid, ask, T + 20) is False
    assert led.mark(BTC, 120.0, 122.0, T + 5) is False  # older than the current quote
    assert led.mark(BTC, 120.0, 122.0, -1) is False
    assert led.mark_price(BTC, math.nan, T + 30) is False
    assert led.marks[BTC] == 100.0 and led.ts_ns == T + 10
    snap = led.snapshot()
    assert all(math.isfinite(v) for v in (snap.equity, snap.unrealized_pnl, snap.exposure))


def test_drawdown_and_peak() -> None:
    led = Ledger(starting_equity=1_000.0)
    assert led.peak_equity == 1_000.0 and led.drawdown == 0.0
    led.apply_fill(fill("BUY", 1.0, 100.0))
    for px, ts in [(110.0, 1), (95.0, 2), (105.0, 3)]:
        led.mark_price(BTC, px, T + ts)
    assert led.peak_equity == 1_010.0 and led.equity == 1_005.0
    assert led.drawdown == 5.0 and led.max_drawdown == 15.0
    led.mark_price(BTC, 130.0, T + 4)
    assert led.peak_equity == 1_030.0 and led.drawdown == 0.0 and led.max_drawdown == 15.0
    view = led.view()
    assert isinstance(view, PortfolioView)
    assert (view.equity, view.peak_equity, view.positions, view.marks) == (
        1_030.0,
        1_030.0,
        {BTC: 1.0},
        {BTC: 130.0},
    )


def test_pnl_today_resets_at_utc_midnight() -> None:
    led = Ledger()
    led.apply_fill(fill("BUY", 1.0, 100.0, ts_ns=MIDNIGHT - 60 * 10**9))
    led.mark_price(BTC, 110.0, MIDNIGHT - 1)
    assert led.pnl_today == 10.0
    led.mark_price(BTC, 112.0, MIDNIGHT + 1)  # the new day starts from the last state
    assert led.pnl_today == approx(2.0) and led.equity == 12.0
    led.apply_fill(fill("SELL", 1.0, 107.0, ts_ns=MIDNIGHT + 2))
    assert led.pnl_today == approx(-3.0) and led.realized_pnl == 7.0
    # A late event from yesterday does not take the clock back.
    led.mark_price(ETH, 1.0, MIDNIGHT - 5)
    assert led.ts_ns == MIDNIGHT + 2 and led.pnl_today == approx(-3.0)
    # advance() resets the day with no tick at all.
    led.advance(MIDNIGHT + DAY)
    assert led.pnl_today == 0.0 and led.view().pnl_today == 0.0
    with pytest.raises(ValueError, match="ts_ns"):
        led.advance(-1)


# --- slippage and attribution ---------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "px", "expected"),
    [("BUY", 101.0, 100.0), ("BUY", 99.0, -100.0), ("SELL", 99.0, 100.0), ("SELL", 101.0, -100.0)],
)
def test_slippage_sign(side: str, px: float, expected: float) -> None:
    f = fill(side, 1.0, px, reference_price=100.0)
    assert slippage_bps(f) == approx(expected) and Ledger.slippage_bps(f) == approx(expected)


def test_slippage_without_reference_is_none() -> None:
    assert slippage_bps(fill()) is None


def test_attribution_by_model_and_signal() -> None:
    dec_a, dec_b, dec_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sig_a, sig_b = uuid.uuid4(), uuid.uuid4()
    a = dict(decision_id=dec_a, signal_id=sig_a, model_version="m1", reference_price=100.0)
    led = Ledger()
    # Two partial fills of one decision's order: one lot, one round trip.
    led.apply_fill(fill("BUY", 0.5, 100.0, commission=0.05, **a))
    led.apply_fill(fill("BUY", 0.5, 101.0, commission=0.05, ts_ns=T + 1, **a))
    led.apply_fill(
        fill(
            "BUY",
            1.0,
            102.0,
            decision_id=dec_b,
            signal_id=sig_b,
            model_version="m2",
            reference_price=102.0,
            ts_ns=T + 2,
        )
    )
    trades = led.apply_fill(fill("SELL", 2.0, 105.0, decision_id=dec_c, ts_ns=T + 3))
    ta, tb = trades
    assert (ta.decision_id, ta.signal_id, ta.model_version) == (dec_a, sig_a, "m1")
    assert ta.quantity == 1.0 and ta.entry_px == approx(100.5) and ta.opened_ns == T
    assert ta.realized_pnl == approx(4.5 - 0.1) and ta.exit_decision_id == dec_c
    assert ta.entry_slippage_bps == approx(50.0)  # (0 bps + 100 bps) / 2
    assert tb.realized_pnl == approx(3.0) and tb.entry_slippage_bps == 0.0
    assert led.pnl_by_model() == {"m1": approx(4.4), "m2": approx(3.0)}
    assert led.pnl_by_signal() == {sig_a: approx(4.4), sig_b: approx(3.0)}
    # Unattributed trades count under the empty model and under no signal.
    led.apply_fill(fill("SELL", 1.0, 100.0, ts_ns=T + 4))
    led.apply_fill(fill("BUY", 1.0, 99.0, ts_ns=T + 5))
    assert led.pnl_by_model()[""] == approx(1.0) and len(led.pnl_by_signal()) == 2
    assert led.closed_trades[:2] == trades


# --- bad inputs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("quantity", 0.0),
        ("quantity", -1.0),
        ("quantity", math.nan),
        ("quantity", "1"),
        ("price", math.nan),
        ("price", math.inf),
        ("price", 0.0),
        ("side", "HOLD"),
        ("side", "buy"),
        ("commission", math.nan),
        ("ts_ns", -1),
        ("ts_ns", 1.5),
        ("instrument_id", ""),
        ("reference_price", 0.0),
        ("reference_price", math.nan),
        ("decision_ts_ns", -5),
        ("decision_id", "not-a-uuid"),
        ("signal_id", 7),
        ("model_version", None),
    ],
)
def test_bad_fill_raises_naming_the_field_and_leaves_the_ledger_unchanged(
    field: str, value: object
) -> None:
    led = Ledger(starting_equity=100.0)
    led.apply_fill(fill("BUY", 1.0, 100.0, commission=0.1))
    led.mark(BTC, 101.0, 103.0, T + 1)
    before = (msgspec.to_builtins(led.snapshot()), led.closed_trades, led.pnl_by_model())
    with pytest.raises(ValueError, match=rf"fill\.{field}\b"):
        led.apply_fill(fill(**{"side": "SELL", "px": 110.0, "ts_ns": T + DAY, field: value}))
    after = (msgspec.to_builtins(led.snapshot()), led.closed_trades, led.pnl_by_model())
    assert after == before


def test_not_a_fill_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be a Fill"):
        Ledger().apply_fill({"side": "BUY"})  # type: ignore[arg-type]


# --- random sequences: round trips against the books, and against NautilusTrader -------


def random_fills(n: int, seed: int) -> list[tuple[str, Decimal, Decimal, Decimal, uuid.UUID]]:
    """Side, quantity (0.001 lots), price (0.1 ticks) and commission (8 dp, some rebates)
    for a position that flips, adds, reduces and goes exactly flat often."""
    rng = random.Random(seed)
    decisions = [uuid.UUID(int=k + 1) for k in range(4)]
    ticks, pos = 600_000, Decimal(0)
    out = []
    for _ in range(n):
        ticks += rng.randint(-300, 300)
        px = Decimal(ticks) / 10
        side = rng.choice(["BUY", "SELL"])
        if pos and rng.random() < 0.15:  # exactly flat
            side, qty = ("SELL" if pos > 0 else "BUY"), abs(pos)
        else:
            qty = Decimal(rng.randint(1, 2_000)) / 1_000
        rate = Decimal("0.0004") if rng.random() < 0.8 else Decimal("-0.0001")
        commission = (qty * px * rate).quantize(Decimal("0.00000001"))
        pos += qty if side == "BUY" else -qty
        out.append((side, qty, px, commission, rng.choice(decisions)))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_round_trips_add_up_to_realized_whenever_flat(seed: int) -> None:
    led = Ledger()
    flats = 0
    for i, (side, qty, px, commission, decision) in enumerate(random_fills(300, seed)):
        led.apply_fill(
            fill(side, float(qty), float(px), commission=float(commission), ts_ns=T + i)
            if i % 3
            else fill(
                side,
                float(qty),
                float(px),
                commission=float(commission),
                ts_ns=T + i,
                decision_id=decision,
                model_version=f"m{decision.int}",
            )
        )
        if led.position(BTC) == 0.0:
            flats += 1
            total = sum(t.realized_pnl for t in led.closed_trades)
            assert total == pytest.approx(led.realized_pnl, rel=1e-9, abs=1e-6)
            assert sum(led.pnl_by_model().values()) == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert flats > 10


def test_matches_nautilus_position_on_random_fills() -> None:
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.enums import LiquiditySide, OrderSide, OrderType
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import ClientOrderId, PositionId, TradeId, VenueOrderId
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.model.position import Position
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.test_kit.stubs.identifiers import TestIdStubs

    instrument = TestInstrumentProvider.btcusdt_perp_binance()
    usdt = instrument.quote_currency

    def nt_fill(i: int, side: str, qty: Decimal, px: Decimal, commission: Decimal) -> OrderFilled:
        return OrderFilled(
            trader_id=TestIdStubs.trader_id(),
            strategy_id=TestIdStubs.strategy_id(),
            instrument_id=instrument.id,
            client_order_id=ClientOrderId(f"O-{i}"),
            venue_order_id=VenueOrderId(f"V-{i}"),
            account_id=TestIdStubs.account_id(),
            trade_id=TradeId(f"T-{i}"),
            position_id=PositionId("P-1"),
            order_side=OrderSide.BUY if side == "BUY" else OrderSide.SELL,
            order_type=OrderType.MARKET,
            last_qty=Quantity.from_str(str(qty)),
            last_px=Price.from_str(str(px)),
            currency=usdt,
            commission=Money(commission, usdt),
            liquidity_side=LiquiditySide.TAKER,
            event_id=UUID4(),
            ts_event=T + i,
            ts_init=T + i,
        )

    # What Nautilus's ExecutionEngine does under NETTING: a fill that would flip the
    # position is split into a closing and an opening fill, its commission pro rata.
    positions: list[Position] = []
    led = Ledger(multipliers={instrument.id.value: float(instrument.multiplier)})
    flips = 0
    for i, (side, qty, px, commission, decision) in enumerate(random_fills(200, seed=11)):
        current = positions[-1] if positions else None
        if current is None or current.is_closed:
            positions.append(Position(instrument, nt_fill(i, side, qty, px, commission)))
        elif current.is_opposite_side(nt_fill(i, side, qty, px, commission).order_side) and (
            qty > current.quantity.as_decimal()
        ):
            flips += 1
            held = current.quantity.as_decimal()
            first = Money(commission * held / qty, usdt).as_decimal()
            current.apply(nt_fill(i, side, held, px, first))
            positions.append(
                Position(instrument, nt_fill(i, side, qty - held, px, commission - first))
            )
        else:
            current.apply(nt_fill(i, side, qty, px, commission))

        led.apply_fill(
            Fill(
                instrument_id=instrument.id.value,
                side=side,  # type: ignore[arg-type]
                quantity=float(qty),
                price=float(px),
                commission=float(commission),
                ts_ns=T + i,
                decision_id=decision,
            )
        )
        nt_realized = sum(p.realized_pnl.as_double() for p in positions if p.realized_pnl)
        assert led.realized_pnl == pytest.approx(nt_realized, rel=1e-6, abs=1e-6), i
        nt_pos = positions[-1]
        assert led.position(instrument.id.value) == pytest.approx(nt_pos.signed_qty, abs=1e-9)
        if nt_pos.is_open:
            avg = led.avg_px(instrument.id.value)
            assert avg == pytest.approx(nt_pos.avg_px_open, rel=1e-6), i
        else:
            assert led.avg_px(instrument.id.value) is None
    assert flips > 10 and sum(p.is_closed for p in positions) > 20


# --- rebuilding from stored events ----------------------------------------------------


def test_ledger_from_events() -> None:
    src = ev.Source(component="tests", run_id="run-1")
    common = dict(source=src, instrument_id=BTC)
    sig = ev.SignalGenerated(
        ts_event=T,
        ts_init=T,
        model_version="m-7",
        feature_spec_hash="abc",
        horizon="50 events",
        p_up=0.7,
        p_down=0.1,
        p_flat=0.2,
        confidence=0.8,
        bid=99.0,
        ask=101.0,
        **common,
    )
    dec = ev.DecisionMade(
        ts_event=T + 1,
        ts_init=T + 1,
        causation_id=sig.event_id,
        action="BUY",
        target_position=2.0,
        reference_price=100.0,
        model_version="m-7",
        **common,
    )
    sub = ev.OrderSubmitted(
        ts_event=T + 2,
        ts_init=T + 2,
        causation_id=dec.event_id,
        client_order_id="O-1",
        side="BUY",
        order_type="MARKET",
        quantity=2.0,
        reference_price=100.0,
        decision_id=dec.event_id,
        **common,
    )
    order = dict(client_order_id="O-1", venue_order_id="V-1", commission_currency="USDT")
    fill_1 = ev.OrderFilled(
        ts_event=T + 3,
        ts_init=T + 3,
        causation_id=sub.event_id,
        trade_id="T-1",
        side="BUY",
        last_qty=1.0,
        last_px=100.5,
        commission=0.1,
        **order,
        **common,
    )
    fill_2 = ev.OrderFilled(  # matched to its order by client order id only
        ts_event=T + 4,
        ts_init=T + 4,
        trade_id="T-2",
        side="BUY",
        last_qty=1.0,
        last_px=101.5,
        commission=0.1,
        **order,
        **common,
    )
    # A second decision, whose order names its decision only through the risk verdict.
    dec_2 = ev.DecisionMade(
        ts_event=T + 5,
        ts_init=T + 5,
        causation_id=uuid.uuid4(),
        action="FLATTEN",
        target_position=0.0,
        reference_price=110.0,
        model_version="m-8",
        **common,
    )
    verdict = ev.RiskVerdict(
        ts_event=T + 6, ts_init=T + 6, decision_id=dec_2.event_id, approved=True, **common
    )
    sub_2 = ev.OrderSubmitted(
        ts_event=T + 7,
        ts_init=T + 7,
        causation_id=verdict.event_id,
        client_order_id="O-2",
        side="SELL",
        order_type="MARKET",
        quantity=1.0,
        **common,
    )
    fill_3 = ev.OrderFilled(
        ts_event=T + 8,
        ts_init=T + 8,
        causation_id=sub_2.event_id,
        client_order_id="O-2",
        venue_order_id="V-2",
        trade_id="T-3",
        side="SELL",
        last_qty=1.0,
        last_px=109.0,
        commission=0.2,
        commission_currency="USDT",
        **common,
    )
    snapshot = ev.PnlSnapshot(
        ts_event=T + 9,
        ts_init=T + 9,
        source=src,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        exposure=0.0,
        drawdown=0.0,
        positions={BTC: 1.0},
        marks={BTC: 112.0},
    )
    # Streaming writes OrderFilled twice: the copy must not be booked again.
    copy = msgspec.structs.replace(fill_1, event_id=uuid.uuid4())
    stored = [sig, dec, sub, fill_1, fill_1, copy, fill_2, dec_2, verdict, sub_2, fill_3, snapshot]
    led = ledger_from_events(stored, starting_equity=1_000.0)

    assert led.position(BTC) == 1.0 and led.avg_px(BTC) == 101.0
    assert led.realized_pnl == approx(8.0 - 0.4) and led.commissions == approx(0.4)
    assert led.marks == {BTC: 112.0} and led.unrealized_pnl == approx(11.0)
    assert led.equity == approx(1_000.0 + 7.6 + 11.0) and led.ts_ns == T + 9
    assert led.closed_trades == []  # decision 1's two units: one still open
    (trade,) = led.apply_fill(fill("SELL", 1.0, 111.0, ts_ns=T + 10))
    assert isinstance(trade, ClosedTrade)
    assert (trade.decision_id, trade.signal_id, trade.model_version) == (
        dec.event_id,
        sig.event_id,
        "m-7",
    )
    assert trade.quantity == 2.0 and trade.entry_px == approx(101.0)
    assert trade.exit_px == approx(110.0) and trade.entry_slippage_bps == approx(100.0)
    assert trade.realized_pnl == approx(18.0 - 0.2 - 0.2)
    assert led.pnl_by_signal() == {sig.event_id: approx(17.6)}


def test_ledger_from_events_marks_from_signals_and_unattributed_fills() -> None:
    src = ev.Source(component="tests", run_id="run-1")
    orphan = ev.OrderFilled(  # its order was never stored: booked, unattributed
        ts_event=T,
        ts_init=T,
        source=src,
        instrument_id=ETH,
        client_order_id="O-9",
        venue_order_id="V-9",
        trade_id="T-9",
        side="SELL",
        last_qty=2.0,
        last_px=50.0,
        commission=0.0,
        commission_currency="USDT",
    )
    sig = ev.SignalGenerated(
        ts_event=T + 1,
        ts_init=T + 1,
        source=src,
        instrument_id=ETH,
        model_version="m",
        feature_spec_hash="h",
        horizon="h",
        p_up=0.3,
        p_down=0.3,
        p_flat=0.4,
        confidence=0.5,
        bid=47.0,
        ask=49.0,
    )
    led = ledger_from_events([orphan, sig], multipliers={"*": 10.0})
    assert led.position(ETH) == -2.0 and led.marks == {ETH: 48.0}
    assert led.unrealized_pnl == approx(2 * 2 * 10) and led.exposure == approx(2 * 48 * 10)
    (trade,) = led.apply_fill(fill("BUY", 2.0, 49.0, instrument_id=ETH, ts_ns=T + 2))
    assert trade.decision_id is None and trade.entry_slippage_bps is None
    assert trade.realized_pnl == approx(20.0) and led.pnl_by_model() == {"": approx(20.0)}


def test_snapshot_is_a_frozen_encodable_struct() -> None:
    led = Ledger(starting_equity=50.0)
    assert led.snapshot().ts_ns is None
    led.apply_fill(fill("SELL", 2.0, 100.0))
    led.mark(BTC, 99.0, 99.0, T + 1)
    snap = led.snapshot()
    assert snap.positions == {BTC: -2.0} and snap.avg_px == {BTC: 100.0}
    assert (snap.unrealized_pnl, snap.equity, snap.exposure, snap.ts_ns) == (
        2.0,
        52.0,
        198.0,
        T + 1,
    )
    with pytest.raises(AttributeError):
        snap.equity = 0.0  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(snap), type=type(snap)) == snap
