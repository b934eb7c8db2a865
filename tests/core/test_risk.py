"""Pre-trade risk rules, one by one, then the engine's order and state."""

from pathlib import Path

import msgspec
import pytest

from tapereader.core.risk import (
    MarketView,
    OrderIntent,
    PortfolioView,
    RiskConfigError,
    RiskEngine,
    check_confidence,
    check_daily_loss,
    check_drawdown,
    check_notional,
    check_position,
    check_spread,
    check_stale,
    load_limits,
    reduces_risk,
)

ROOT = Path(__file__).resolve().parents[2]
BTC, ETH = "BTCUSDT-PERP.BINANCE", "ETHUSDT-PERP.BINANCE"
T = 1_723_161_255_000_000_000
LIMITS = load_limits(ROOT / "config" / "risk.toml")


def order(**kw: object) -> OrderIntent:
    base = dict(
        instrument_id=BTC,
        action="BUY",
        target=0.1,
        reference_price=60_000.0,
        confidence=0.7,
        ts_ns=T,
    )
    return OrderIntent(**{**base, **kw})  # type: ignore[arg-type]


def market(**kw: object) -> MarketView:
    return MarketView(**{**dict(bid=59_999.9, ask=60_000.1, ts_last_ns=T - 10**8), **kw})  # type: ignore[arg-type]


def portfolio(**kw: object) -> PortfolioView:
    base = dict(positions={}, marks={}, pnl_today=0.0, equity=10_000.0, peak_equity=10_000.0)
    return PortfolioView(**{**base, **kw})  # type: ignore[arg-type]


# --- the rules ------------------------------------------------------------------------


def test_drawdown_trips_at_the_limit() -> None:
    assert check_drawdown(portfolio(equity=7_500.01), LIMITS) is None
    v = check_drawdown(portfolio(equity=7_500.0), LIMITS)
    assert v and v.rule == "kill_switch" and v.observed == 2_500.0 and v.limit == 2_500.0


def test_daily_loss() -> None:
    assert check_daily_loss(portfolio(pnl_today=-999.0), LIMITS) is None
    v = check_daily_loss(portfolio(pnl_today=-1_000.0), LIMITS)
    assert v and v.rule == "daily_loss" and v.observed == 1_000.0


def test_stale_data() -> None:
    assert check_stale(order(), market(ts_last_ns=T - 2 * 10**9), LIMITS) is None
    v = check_stale(order(), market(ts_last_ns=T - 2 * 10**9 - 1), LIMITS)
    assert v and v.rule == "stale_data" and v.observed == pytest.approx(2_000.000001)


def test_spread() -> None:
    assert check_spread(market(), LIMITS) is None
    wide = check_spread(market(bid=59_970.0, ask=60_030.0), LIMITS)
    assert wide and wide.rule == "max_spread" and wide.observed == pytest.approx(10.0)
    crossed_or_empty = check_spread(market(bid=0.0, ask=60_000.0), LIMITS)
    assert crossed_or_empty and crossed_or_empty.detail == "no two-sided market"


def test_confidence() -> None:
    assert check_confidence(order(confidence=0.55), LIMITS) is None
    v = check_confidence(order(confidence=0.549), LIMITS)
    assert v and v.rule == "min_confidence"


def test_position_limit_per_instrument_and_default() -> None:
    assert check_position(order(target=-0.5), LIMITS) is None
    v = check_position(order(target=-0.51), LIMITS)
    assert v and v.rule == "max_position" and v.limit == 0.5
    unknown = check_position(order(instrument_id="DOGE.X", target=1.0), LIMITS)
    assert unknown and unknown.limit == 0.0


def test_notional_per_instrument_and_in_total() -> None:
    assert check_notional(order(target=0.5), portfolio(), LIMITS) is None  # 30k
    big = check_notional(order(target=0.9), portfolio(), LIMITS)
    assert big and big.rule == "max_notional" and big.observed == pytest.approx(54_000.0)
    p = portfolio(positions={ETH: -25.0, BTC: 0.2}, marks={ETH: 3_000.0, BTC: 60_000.0})
    total = check_notional(order(target=0.5), p, LIMITS)  # 75k ETH + 30k BTC (not 12k+30k)
    assert total and total.rule == "max_total_notional" and total.observed == pytest.approx(105_000)


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        (1.0, 0.0, True),
        (1.0, 0.5, True),
        (-1.0, -0.2, True),
        (1.0, -0.5, False),
        (1.0, 1.5, False),
        (0.0, 0.0, False),
        (0.0, 0.1, False),
    ],
)
def test_what_reduces_risk(current: float, target: float, expected: bool) -> None:
    assert reduces_risk(current, target) is expected


# --- the engine -----------------------------------------------------------------------


def test_the_engine_approves_a_sound_order() -> None:
    assert RiskEngine(LIMITS).check(order(), market(), portfolio()).approved


def test_a_tripped_kill_switch_passes_only_risk_reducing_orders_until_reset() -> None:
    engine = RiskEngine(LIMITS)
    p = portfolio(positions={BTC: 0.3}, equity=7_000.0, marks={BTC: 60_000.0})
    v = engine.check(order(target=0.4), market(), p)
    assert not v.approved and v.rule == "kill_switch" and engine.kill_switch_tripped
    recovered = portfolio(positions={BTC: 0.3}, marks={BTC: 60_000.0})  # equity back at peak
    again = engine.check(order(target=0.4, ts_ns=T + 1), market(), recovered)
    assert not again.approved and again.rule == "kill_switch"
    flat = engine.check(order(action="FLATTEN", target=0.0, ts_ns=T + 2), market(), p)
    assert flat.approved
    engine.reset_kill_switch()
    assert engine.check(order(target=0.4, ts_ns=T + 3), market(), recovered).approved


def test_risk_reducing_orders_pass_even_stale_wide_and_unsure() -> None:
    engine = RiskEngine(LIMITS)
    p = portfolio(positions={BTC: 0.4}, pnl_today=-5_000.0, marks={BTC: 60_000.0})
    v = engine.check(
        order(action="SELL", target=0.1, confidence=0.1),
        market(bid=50_000.0, ask=70_000.0, ts_last_ns=T - 60 * 10**9),
        p,
    )
    assert v.approved


def test_the_order_rate_limit_counts_approvals_in_a_sliding_minute() -> None:
    engine = RiskEngine(LIMITS)
    step = 10**9
    for i in range(30):
        assert engine.check(
            order(ts_ns=T + i * step), market(ts_last_ns=T + i * step), portfolio()
        ).approved
    late = T + 30 * step
    v = engine.check(order(ts_ns=late), market(ts_last_ns=late), portfolio())
    assert not v.approved and v.rule == "order_rate" and v.observed == 31
    # Even flattening obeys the rate limit: a runaway loop is stopped either way.
    flat = engine.check(
        order(action="FLATTEN", target=0.0, ts_ns=late),
        market(ts_last_ns=late),
        portfolio(positions={BTC: 0.1}),
    )
    assert not flat.approved and flat.rule == "order_rate"
    after = T + 60 * step + 1  # the first order left the window
    assert engine.check(order(ts_ns=after), market(ts_last_ns=after), portfolio()).approved


def test_a_drawdown_trips_the_kill_switch_even_when_the_rate_limit_is_reached() -> None:
    # A burst of decisions (a live feed replayed at full speed) fills the minute's order
    # budget; the drawdown that builds meanwhile must still trip the switch, not hide
    # behind "order_rate".
    engine = RiskEngine(LIMITS)
    for i in range(30):
        assert engine.check(order(ts_ns=T + i), market(ts_last_ns=T + i), portfolio()).approved
    v = engine.check(order(ts_ns=T + 31), market(), portfolio(equity=7_000.0))
    assert not v.approved and v.rule == "kill_switch" and engine.kill_switch_tripped


def test_rejections_do_not_count_towards_the_rate() -> None:
    engine = RiskEngine(LIMITS)
    for i in range(100):
        assert not engine.check(order(confidence=0.1, ts_ns=T + i), market(), portfolio()).approved
    assert engine.check(order(ts_ns=T + 200), market(), portfolio()).approved


# --- the limits file ------------------------------------------------------------------


def test_the_shipped_limits_load() -> None:
    assert LIMITS.max_orders_per_minute == 30 and LIMITS.position_limit("*") == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[other]\nx = 1\n", r"missing table \[limits\]"),
        ("[limits\n", "not valid TOML"),
        ("[limits]\nmax_spread_bps = 5.0\n", "missing required field"),
    ],
)
def test_a_bad_limits_file_names_the_file_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(RiskConfigError, match=message) as info:
        load_limits(path)
    assert str(path) in str(info.value)


def test_a_bad_value_names_the_key(tmp_path: Path) -> None:
    text = (
        (ROOT / "config" / "risk.toml")
        .read_text()
        .replace("min_confidence = 0.55", "min_confidence = 1.5")
    )
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(RiskConfigError, match=r"limits\.min_confidence"):
        load_limits(path)


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    text = (
        (ROOT / "config" / "risk.toml")
        .read_text()
        .replace("[limits]\n", "[limits]\nmax_leverag = 3\n")
    )
    path = tmp_path / "risk.toml"
    path.write_text(text)
    with pytest.raises(RiskConfigError, match="max_leverag"):
        load_limits(path)


def test_verdicts_are_plain_structs() -> None:
    v = RiskEngine(LIMITS).check(order(confidence=0.0), market(), portfolio())
    assert msgspec.to_builtins(v) == {
        "approved": False,
        "rule": "min_confidence",
        "observed": 0.0,
        "limit": 0.55,
        "detail": "",
    }
