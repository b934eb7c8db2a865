"""The whole chain in a BacktestEngine on real EUR/USD quotes, out of sample.

One backtest feeds most checks (journal, causation, reconciliation, report, what-if);
a second with the same run id proves the event stream is reproducible; a third, with a
tiny drawdown limit, trips the kill switch.
"""

import hashlib
from pathlib import Path

import msgspec
import numpy as np
import pytest

from tapereader.core import events as ev
from tapereader.core.codec import to_msgpack
from tapereader.core.decision import DecisionPolicy
from tapereader.core.risk import load_limits
from tapereader.replay.backtest import BacktestResult, run_backtest
from tapereader.replay.backtest_config import BacktestConfigError, load_backtest_config
from tapereader.replay.whatif import InstrumentTerms, what_if

from ..conftest import ROOT
from .conftest import OANDA, write_config

pytestmark = pytest.mark.slow
RUN_ID = "bt-test-0001"


def _run(folder: Path, catalog: Path, registry: Path, **kwargs) -> BacktestResult:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = load_backtest_config(write_config(folder, catalog, registry, **kwargs))
    return run_backtest(cfg, run_id=RUN_ID)


@pytest.fixture(scope="module")
def result(two_days: Path, registry: Path, tmp_path_factory: pytest.TempPathFactory):
    return _run(tmp_path_factory.mktemp("run_a"), two_days, registry)


def _of(result: BacktestResult, kind: type) -> list:
    return [e for e in result.events if isinstance(e, kind)]


def test_the_chain_trades_and_the_stored_events_reconcile_with_the_engine(result) -> None:
    fills = _of(result, ev.OrderFilled)
    assert len(_of(result, ev.SignalGenerated)) > 1_000
    assert len(fills) >= 4, "the chain should trade with these thresholds"
    rec = result.reconciliation
    assert rec.ok, rec
    assert rec.realized_events == pytest.approx(rec.realized_engine, abs=1e-6)
    assert rec.realized_engine != 0.0  # a real P&L was reconciled, not two zeros
    completed = _of(result, ev.RunCompleted)[-1]
    assert completed.status == "succeeded"
    assert completed.summary["fills"] == len(fills)


def test_every_fill_traces_back_to_its_signal_and_feature_row(result) -> None:
    by_id = {e.event_id: e for e in result.events}
    for fill in _of(result, ev.OrderFilled):
        order = by_id[fill.causation_id]
        assert isinstance(order, ev.OrderSubmitted)
        verdict = by_id[order.causation_id]
        assert isinstance(verdict, ev.RiskVerdict) and verdict.approved
        decision = by_id[verdict.causation_id]
        assert isinstance(decision, ev.DecisionMade) and order.decision_id == decision.event_id
        signal = by_id[decision.causation_id]
        assert isinstance(signal, ev.SignalGenerated)
        # One correlation id, the feature row's, from the tick to the fill.
        row = signal.causation_id
        assert row is not None and row not in by_id  # rows are named, not stored
        assert {fill.correlation_id, order.correlation_id, decision.correlation_id} == {row}
        assert row.int >> 80 == signal.ts_event // 1_000_000  # the row id carries its tick's ms
        assert signal.ts_event <= decision.ts_event <= fill.ts_event


def test_outcomes_and_signals_say_what_happened(result) -> None:
    outcomes = _of(result, ev.DecisionOutcome)
    assert outcomes, "closed round trips must produce outcomes"
    total = sum(o.realized_pnl for o in outcomes)
    closed = sum(e.realized_pnl for e in _of(result, ev.PositionClosed))
    assert total == pytest.approx(closed, abs=1e-6)
    signal = _of(result, ev.SignalGenerated)[0]
    assert signal.provider == "CompiledCPU" and signal.status == "ready"  # engine "auto"
    assert signal.bid is not None and signal.ask is not None and signal.bid <= signal.ask
    assert set(signal.members) == {"lr", "rf", "xgb", "lstm"}
    assert _of(result, ev.EnsembleWeightsAdapted), "adapt_every=100 must adapt over hours"


def test_the_report_is_written_and_agrees_with_the_events(result) -> None:
    html = result.html.read_text()
    assert RUN_ID in html and "<svg" in html
    report = result.report
    assert report.totals.trades == len(_of(result, ev.DecisionOutcome))
    assert report.risk_approved == sum(1 for v in _of(result, ev.RiskVerdict) if v.approved)
    assert set(result.report.latency.hops) >= {"features", "signal", "decision", "risk", "order"}


def _config_of(result: BacktestResult) -> Path:
    return Path(result.html).parents[2] / "backtest.toml"


def test_the_same_run_id_replays_to_the_same_event_stream(result, tmp_path: Path) -> None:
    # The same configuration file and run id, into another store: every event, id, time
    # and number must come out the same.
    cfg = load_backtest_config(_config_of(result))
    again = run_backtest(
        cfg, run_id=RUN_ID, store=str(tmp_path / "events.db"), report_dir=tmp_path / "reports"
    )

    def digest(r: BacktestResult) -> str:
        h = hashlib.sha256()
        for e in r.events:
            h.update(to_msgpack(e))
        return h.hexdigest()

    assert len(again.events) == len(result.events)
    assert digest(again) == digest(result)


def _terms() -> dict[str, InstrumentTerms]:
    return {OANDA: InstrumentTerms(taker_fee=0.0, multiplier=1.0, size_step=1.0)}


def test_what_if_with_the_recorded_settings_reproduces_the_engine(result) -> None:
    cfg = load_backtest_config(_config_of(result))
    replayed = what_if(
        result.events,
        policies={OANDA: cfg.chain.decision.policy},
        limits=load_limits(cfg.chain.risk.limits),
        terms=_terms(),
        starting_equity=cfg.chain.starting_equity,
    )
    assert replayed.fills == len(_of(result, ev.OrderFilled))
    assert replayed.ledger.realized_pnl == pytest.approx(
        result.reconciliation.realized_engine, abs=1e-6
    )


def test_what_if_with_a_stricter_policy_trades_less(result) -> None:
    cfg = load_backtest_config(_config_of(result))
    strict = msgspec.structs.replace(cfg.chain.decision.policy, enter=0.3, exit=0.25, min_edge=0.2)
    replayed = what_if(
        result.events,
        policies={OANDA: strict},
        limits=load_limits(cfg.chain.risk.limits),
        terms=_terms(),
        starting_equity=cfg.chain.starting_equity,
    )
    assert replayed.fills < len(_of(result, ev.OrderFilled))
    assert replayed.signals == len(_of(result, ev.SignalGenerated))


def test_a_tripped_kill_switch_lets_only_risk_reducing_orders_through(
    two_days: Path, registry: Path, tmp_path: Path
) -> None:
    limits = (ROOT / "config" / "risk.toml").read_text()
    limits = limits.replace("max_drawdown = 2_500.0", "max_drawdown = 0.5")
    assert "max_drawdown = 0.5" in limits
    (tmp_path / "risk.toml").write_text(limits)
    r = _run(tmp_path / "run", two_days, registry, limits=tmp_path / "risk.toml")
    alerts = [a for a in _of(r, ev.TradeMonitorAlert) if a.kind == "kill_switch"]
    assert len(alerts) == 1
    tripped_at = alerts[0].ts_event
    decisions = {d.event_id: d for d in _of(r, ev.DecisionMade)}
    after = [v for v in _of(r, ev.RiskVerdict) if v.ts_event > tripped_at]
    assert any(v.rule == "kill_switch" and not v.approved for v in after)
    for v in after:
        if v.approved:
            assert decisions[v.decision_id].action == "FLATTEN"
    assert r.reconciliation.ok


def test_a_missing_model_stops_the_backtest_before_any_tick(two_days: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-registry"
    empty.mkdir()
    with pytest.raises(Exception, match="no model version 'pipeline-oanda'"):
        _run(tmp_path / "run", two_days, empty)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("enter = 0.02", "enter = 0.02\nentr = 0.5"), r"\[chain\].*unknown field `entr`"),
        (("end = 2014-05-02T10:00:00Z", "end = 2014-05-01T10:00:00Z"), "end .* must be after"),
        (('name = "OANDA"', 'name = "FXCM"'), "no \\[\\[backtest.venues\\]\\] named 'OANDA'"),
        (("min_edge = 0.01", "min_edge = 2.0"), r"chain.decision.policy.min_edge"),
        (("exit = 0.01", "exit = 0.5"), "hysteresis"),
    ],
)
def test_a_bad_config_is_refused_naming_the_file_and_key(
    change: tuple[str, str], message: str, tmp_path: Path, two_days: Path, registry: Path
) -> None:
    path = write_config(tmp_path, two_days, registry)
    text = path.read_text()
    assert change[0] in text
    path.write_text(text.replace(change[0], change[1]))
    with pytest.raises(BacktestConfigError, match=message) as info:
        load_backtest_config(path)
    assert str(path) in str(info.value)


def test_the_policy_in_the_config_is_the_core_policy(tmp_path: Path, two_days, registry) -> None:
    cfg = load_backtest_config(write_config(tmp_path, two_days, registry))
    assert isinstance(cfg.chain.decision.policy, DecisionPolicy)
    assert cfg.chain.decision.policy.min_hold_ns == 60_000_000_000


def test_live_signals_equal_the_batch_path_over_the_same_ticks(result, registry: Path) -> None:
    # The chain's signals (kernel per event, LSTM window kept by the SignalActor) against the
    # learning path (kernel over arrays, windows cut from the dataset) on the same span: the
    # members' probabilities must agree row for row. (The ensemble's weights adapt online,
    # so the members are what must match.)
    from tapereader.core.features.spec import SPEC
    from tapereader.core.models.registry import Registry
    from tapereader.core.models.runtime import EnsembleRuntime
    from tapereader.replay.dataset import build_dataset

    cfg = load_backtest_config(_config_of(result))
    bundle = Registry(registry).load("pipeline-oanda", feature_spec_hash=SPEC.hash)
    window = bundle.manifest.window
    ds = build_dataset(
        cfg.backtest.catalog,
        OANDA,
        window=window,
        start_ns=int(cfg.backtest.start.timestamp() * 1e9),
        end_ns=int(cfg.backtest.end.timestamp() * 1e9),
    )
    rows = np.arange(window - 1, len(ds.rows))
    offsets = np.arange(-window + 1, 1)
    pred = EnsembleRuntime.from_bundle(bundle).predict(
        ds.rows[rows], np.ascontiguousarray(ds.rows[rows[:, None] + offsets])
    )
    signals = _of(result, ev.SignalGenerated)
    assert result.chain.signals.failures == 0
    assert len(signals) == len(rows)
    assert [s.ts_event for s in signals] == ds.ts[rows].tolist()
    live = np.array([[s.members[m] for m in ("lr", "rf", "xgb", "lstm")] for s in signals])
    assert np.abs(live - pred.members[:, :, 2]).max() < 1e-5


@pytest.mark.parametrize(
    ("offset_bps", "fills"),
    [(1.0, True), (-20.0, False)],  # at the touch plus 1 bp: fills; 20 bp away: IOC cancels
)
def test_limit_orders_with_a_time_in_force_fill_or_are_cancelled(
    offset_bps: float, fills: bool, two_days: Path, registry: Path, tmp_path: Path
) -> None:
    extra = (
        f'\n[chain.execution]\norder_type = "LIMIT"\ntime_in_force = "IOC"\n'
        f"limit_offset_bps = {offset_bps}\n"
    )
    r = _run(tmp_path / "run", two_days, registry, extra=extra)
    submitted = _of(r, ev.OrderSubmitted)
    assert submitted and all(o.order_type == "LIMIT" and o.price for o in submitted)
    assert all(o.time_in_force == "IOC" for o in submitted)
    if fills:
        assert len(_of(r, ev.OrderFilled)) == len(submitted)
    else:
        assert not _of(r, ev.OrderFilled)
        cancelled = {c.client_order_id for c in _of(r, ev.OrderCancelled)}
        assert cancelled == {o.client_order_id for o in submitted}
    assert r.reconciliation.ok
