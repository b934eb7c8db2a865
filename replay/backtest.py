"""A replay backtest of the whole actor chain on catalog ticks, journaled and reported.

:func:`run_backtest` builds a ``BacktestEngine`` from a :class:`BacktestConfig`, adds the
chain from :func:`tapereader.actors.chain.build_chain` with reproducible event ids (the
same configuration and run id give the same event stream, event for event), runs it, and
then works from the event store alone: it rebuilds positions and P&L from the stored
events and checks them against the engine's own reports, and writes the report.
"""

import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.backtest.models import (
    FillModel,
    FixedFeeModel,
    LatencyModel,
    MakerTakerFeeModel,
)
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import Currency
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.enums import AccountType, BookType, OmsType
from nautilus_trader.model.identifiers import InstrumentId, TraderId, Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from tapereader.actors.chain import Chain, build_chain
from tapereader.core.events import DomainEvent, RunCompleted, RunStarted, Source
from tapereader.core.ids import EventIds
from tapereader.core.ledger import ledger_from_events
from tapereader.core.models.registry import Registry
from tapereader.core.store import EventStore

from .backtest_config import BacktestConfig, VenueTable
from .report import RunReport, build_report, latency_stats, summary_table, write_html, write_json
from .trade_records import DeferredTradeRecords


class BacktestError(RuntimeError):
    """A backtest that could not run; the message says which part and why."""


@dataclass(frozen=True)
class Reconciliation:
    """Positions and realized P&L rebuilt from the stored events beside the engine's."""

    positions_events: dict[str, float]
    positions_engine: dict[str, float]
    realized_events: float
    realized_engine: float

    @property
    def ok(self) -> bool:
        keys = set(self.positions_events) | set(self.positions_engine)
        same_positions = all(
            abs(self.positions_events.get(k, 0.0) - self.positions_engine.get(k, 0.0)) < 1e-9
            for k in keys
        )
        tolerance = 1e-6 * max(1.0, abs(self.realized_engine))
        return same_positions and abs(self.realized_events - self.realized_engine) <= tolerance


@dataclass(frozen=True)
class BacktestResult:
    run_id: str
    ticks: int
    wall_seconds: float
    events: list[DomainEvent]
    report: RunReport
    reconciliation: Reconciliation
    html: Path
    json: Path
    chain: Chain


def add_venue(engine: BacktestEngine, v: VenueTable) -> None:
    """Add one configured venue (account, book, fill, fee and latency models) to ``engine``."""
    fee = (
        FixedFeeModel(Money.from_str(v.fixed_commission))
        if v.fee_model == "fixed"
        else MakerTakerFeeModel()
    )
    latency = LatencyModel(base_latency_nanos=int(v.latency_ms * 1e6)) if v.latency_ms > 0 else None
    engine.add_venue(
        Venue(v.name),
        oms_type=OmsType[v.oms_type],
        account_type=AccountType[v.account_type],
        starting_balances=[Money.from_str(b) for b in v.starting_balances],
        base_currency=Currency.from_str(v.base_currency) if v.base_currency else None,
        default_leverage=Decimal(str(v.default_leverage)),
        book_type=BookType[v.book_type],
        fill_model=FillModel(
            prob_fill_on_limit=v.prob_fill_on_limit,
            prob_slippage=v.prob_slippage,
            random_seed=v.random_seed,
        ),
        fee_model=fee,
        latency_model=latency,
    )


def load_ticks(cfg: BacktestConfig) -> tuple[list, list]:
    """Instruments and ticks (quotes, trades and, with ``use_book``, book deltas) from the
    catalog for the configured span; a missing instrument or empty span is an error."""
    bt = cfg.backtest
    catalog = ParquetDataCatalog(bt.catalog)
    ids = list(cfg.chain.instruments)
    instruments = catalog.instruments(instrument_ids=ids)
    missing = set(ids) - {i.id.value for i in instruments}
    if missing:
        raise BacktestError(f"{bt.catalog}: no instrument definition for {sorted(missing)}")
    span = {"start": bt.start, "end": bt.end}
    data: list = []
    data += catalog.quote_ticks(instrument_ids=ids, **span)
    data += catalog.trade_ticks(instrument_ids=ids, **span)
    if cfg.chain.features.use_book:
        data += catalog.order_book_deltas(instrument_ids=ids, batched=True, **span)
    if not any(isinstance(d, QuoteTick | TradeTick) for d in data):
        raise BacktestError(f"{bt.catalog}: no ticks for {ids} between {bt.start} and {bt.end}")
    return instruments, data


def run_backtest(
    cfg: BacktestConfig,
    *,
    run_id: str | None = None,
    store: str | None = None,
    report_dir: str | Path | None = None,
    measure_latency: bool = True,
    progress: Callable[[str], None] = lambda _: None,
) -> BacktestResult:
    """Run the configured backtest; ``run_id`` (else a fresh one) seeds the event ids."""
    run_id = run_id or f"bt-{uuid.uuid4().hex[:10]}"
    store = store or cfg.backtest.store
    if "://" not in store:
        Path(store).parent.mkdir(parents=True, exist_ok=True)
    source = Source(component="tapereader.backtest", run_id=run_id)
    ids = EventIds.seeded(f"{run_id}/backtest")
    overlaps = training_overlap(cfg)
    for warning in overlaps:
        progress(f"warning: {warning}")
    progress(f"loading ticks from {cfg.backtest.catalog}")
    instruments, data = load_ticks(cfg)
    first = min(d.ts_event for d in data)
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("TAPEREADER-001"),
            logging=LoggingConfig(log_level=cfg.backtest.log_level),
            # Nautilus's own end-of-run statistics: the report computes what traders read.
            run_analysis=False,
        )
    )
    try:
        venues = {cfg.venue_of(i.id.value).name: cfg.venue_of(i.id.value) for i in instruments}
        for venue in venues.values():
            add_venue(engine, venue)
        for instrument in instruments:
            engine.add_instrument(instrument)
        engine.add_data(data)
        chain = build_chain(
            cfg.chain,
            run_id=run_id,
            reproducible_ids=True,
            measure_latency=measure_latency,
            store=store,
        )
        for actor in chain.actors:
            engine.add_actor(actor)
        for strategy in chain.strategies:
            engine.add_strategy(strategy)
        with EventStore.open(store) as es:
            es.append([_run_started(cfg, source, ids, first, run_id, overlaps)])
        progress(f"running {len(data):,} ticks through the chain (run {run_id})")
        records = DeferredTradeRecords(engine.portfolio.analyzer)
        started = time.perf_counter()
        try:
            engine.run()
        finally:
            records.materialize()
        wall = time.perf_counter() - started
        if chain.journal is not None and chain.journal.unwritten:
            raise BacktestError(
                f"journal could not write {len(chain.journal.unwritten)} events to {store}"
            )
        engine_positions, engine_realized = _engine_view(engine, cfg)
        last = engine.kernel.clock.timestamp_ns()
    finally:
        engine.dispose()

    with EventStore.open(store) as es:
        events = run_events(es, run_id)
        ledger = ledger_from_events(events, starting_equity=cfg.chain.starting_equity)
        reconciliation = Reconciliation(
            positions_events={k: ledger.position(k) for k in cfg.chain.instruments},
            positions_engine=engine_positions,
            realized_events=ledger.realized_pnl,
            realized_engine=engine_realized,
        )
        summary = _summary(chain, events, len(data), reconciliation)
        completed = RunCompleted(
            event_id=ids.next(last),
            ts_event=last,
            ts_init=last,
            source=source,
            status="succeeded" if reconciliation.ok else "failed",
            summary=summary,
            error=None if reconciliation.ok else f"stored events disagree: {reconciliation}",
        )
        es.append([completed])
        events.append(completed)
    samples = chain.latency.samples() if chain.latency is not None else {}
    report = build_report(
        events,
        latency=latency_stats(samples) if samples else None,
        horizon=cfg.backtest.hit_rate_horizon,
        engine_summary={
            "ticks": float(len(data)),
            "wall_seconds": wall,
            "ticks_per_second": len(data) / wall if wall > 0 else 0.0,
            "engine_realized_pnl": engine_realized,
            "events_realized_pnl": reconciliation.realized_events,
        },
    )
    folder = Path(report_dir or cfg.backtest.report_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    html = write_html(report, folder / "report.html")
    json = write_json(report, folder / "report.json")
    return BacktestResult(
        run_id, len(data), wall, events, report, reconciliation, html, json, chain
    )


def run_events(store: EventStore, run_id: str) -> list[DomainEvent]:
    """Every stored event of one run, in store order (a scan of the whole store)."""
    return [r.event for r in store.read() if r.event.source.run_id == run_id]


def training_overlap(cfg: BacktestConfig) -> list[str]:
    """Warnings for instruments whose model learned from (or was validated on) the span:
    such a backtest is in sample and flatters the model."""
    registry = Registry(cfg.chain.signals.registry)
    bt = cfg.backtest
    start = int(bt.start.timestamp() * 1e9) if bt.start else 0
    end = int(bt.end.timestamp() * 1e9) if bt.end else 2**63 - 1
    out = []
    for instrument in cfg.chain.instruments:
        version = cfg.chain.signals.model_versions.get(instrument) or registry.active(instrument)
        if version is None:
            continue  # the SignalActor refuses to start, with the reason
        m = registry.load(version).manifest
        if start < m.holdout_start_ns and end > m.data_start_ns:
            out.append(
                f"{instrument}: the span overlaps the data model {version} was trained or "
                f"validated on (until {_iso(m.holdout_start_ns)}): results are in sample"
            )
    return out


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="seconds")


def _run_started(
    cfg: BacktestConfig,
    source: Source,
    ids: EventIds,
    ts: int,
    run_id: str,
    overlaps: list[str],
) -> RunStarted:
    bt = cfg.backtest
    return RunStarted(
        event_id=ids.next(ts),
        ts_event=ts,
        ts_init=ts,
        source=source,
        kind="backtest",
        config_hash=cfg.digest[:16],
        parameters={
            "config": cfg.origin,
            "catalog": bt.catalog,
            "start": str(bt.start),
            "end": str(bt.end),
            "instruments": ",".join(cfg.chain.instruments),
            "models": ",".join(f"{k}={v}" for k, v in cfg.chain.signals.model_versions.items()),
            "run_id": run_id,
            "in_sample": "; ".join(overlaps) or "no",
        },
    )


def _engine_view(engine: BacktestEngine, cfg: BacktestConfig) -> tuple[dict[str, float], float]:
    """Net positions and total realized P&L as the engine's own cache and portfolio say."""
    cache = engine.kernel.cache
    positions = {
        raw: float(engine.kernel.portfolio.net_position(InstrumentId.from_str(raw)))
        for raw in cfg.chain.instruments
    }
    realized = sum(p.realized_pnl.as_double() for p in cache.positions())
    realized += sum(p.realized_pnl.as_double() for p in cache.position_snapshots())
    return positions, realized


def _summary(
    chain: Chain, events: list[DomainEvent], ticks: int, rec: Reconciliation
) -> dict[str, float]:
    counts: dict[str, int] = {}
    for e in events:
        counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
    return {
        "ticks": float(ticks),
        "signals": float(counts.get("SignalGenerated", 0)),
        "decisions": float(chain.decisions.decisions),
        "orders": float(counts.get("OrderSubmitted", 0)),
        "fills": float(counts.get("OrderFilled", 0)),
        "risk_rejections": float(chain.risk.rejected),
        "model_failures": float(chain.signals.failures),
        "realized_pnl": rec.realized_events,
        "engine_realized_pnl": rec.realized_engine,
    }


def print_summary(result: BacktestResult, out: Callable[[str], None] = print) -> None:
    out(summary_table(result.report))
    rec = result.reconciliation
    verdict = "equal" if rec.ok else "DIFFERENT"
    out(
        f"rebuilt from stored events: positions {rec.positions_events}, realized "
        f"{rec.realized_events:.2f}; engine: {rec.positions_engine}, {rec.realized_engine:.2f} "
        f"({verdict})"
    )
