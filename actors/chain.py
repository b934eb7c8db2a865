"""The actor chain, assembled in one place for backtests and live nodes alike.

``FeatureActor -> SignalActor -> DecisionActor -> RiskActor -> ExecutionStrategy``, with the
TradeMonitorActor beside them, and the JournalActor and PublisherActor taking the domain
events off the bus. :func:`build_chain` makes them from a :class:`ChainConfig` (TOML table
``[chain]``); ``replay/`` and ``tapereader/`` both call it, so what is backtested is what
trades.
"""

from collections import deque
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.data import QuoteTick, TradeTick
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from tapereader.actors.decision_actor import DecisionActor, DecisionActorConfig
from tapereader.actors.feature_actor import FeatureActor, FeatureActorConfig
from tapereader.actors.journal import JournalActor, JournalActorConfig
from tapereader.actors.publisher import PublisherActor, PublisherActorConfig
from tapereader.actors.risk_actor import RiskActor, RiskActorConfig
from tapereader.actors.signal_actor import SignalActor, SignalActorConfig
from tapereader.actors.trade_monitor import TradeMonitorActor, TradeMonitorActorConfig
from tapereader.core.decision import DecisionPolicy, DecisionState
from tapereader.core.latency import LatencyRecorder
from tapereader.core.recovery import Recovered
from tapereader.strategies.execution import ExecutionStrategy, ExecutionStrategyConfig

_Pos = Annotated[float, msgspec.Meta(gt=0.0)]
_NonNegInt = Annotated[int, msgspec.Meta(ge=0)]


class ChainConfigError(ValueError):
    """A chain configuration that cannot be used; the message names the file and key."""


class FeaturesTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    every_events: Annotated[int, msgspec.Meta(ge=1)] = 1
    every_ms: _NonNegInt = 0
    use_book: bool = False


class SignalsTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    registry: str = "var/models"
    model_versions: dict[str, str] = {}
    device: Literal["cpu", "cuda"] = "cpu"
    require_device: bool = False
    engine: Literal["auto", "compiled", "onnxruntime"] = "auto"
    adapt: bool = True
    adapt_every: Annotated[int, msgspec.Meta(ge=1)] = 200


class DecisionTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    policy: DecisionPolicy = DecisionPolicy()
    instruments: dict[str, DecisionPolicy] = {}  # per-instrument policies (position sizes)
    emit_holds: bool = True


class RiskTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    limits: str = "config/risk.toml"


class ExecutionTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    order_type: Literal["MARKET", "LIMIT"] = "MARKET"
    time_in_force: Literal["GTC", "IOC", "FOK", "DAY"] = "GTC"
    limit_offset_bps: float = 0.0
    flatten_on_stop: bool = False


class MonitorTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    snapshot_every_ms: Annotated[int, msgspec.Meta(ge=1)] = 60_000
    drawdown_alert: _Pos = 1_000.0
    slippage_alert_bps: _Pos = 5.0
    stale_after_ms: _Pos = 5_000.0
    stale_check_ms: _NonNegInt = 1_000


class JournalTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    store: str = ""  # SQLite path or postgresql:// URL; empty: no journal
    max_batch: Annotated[int, msgspec.Meta(ge=1)] = 2_000
    max_delay_ms: _Pos = 50.0
    flush_every_ms: _NonNegInt = 0  # live nodes: hand held events over at least this often
    writer: Literal["process", "thread"] = "process"  # who appends: a child process, or a thread


class PublisherTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    endpoint: str = ""  # e.g. tcp://127.0.0.1:5556; empty: no ZeroMQ publishing
    event_types: tuple[str, ...] = ("SignalGenerated", "DecisionMade")
    sndhwm: Annotated[int, msgspec.Meta(ge=1)] = 100_000  # messages queued per subscriber


class ChainConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything :func:`build_chain` needs; every table has defaults but ``instruments``."""

    instruments: list[str]
    starting_equity: _Pos = 100_000.0
    features: FeaturesTable = FeaturesTable()
    signals: SignalsTable = SignalsTable()
    decision: DecisionTable = DecisionTable()
    risk: RiskTable = RiskTable()
    execution: ExecutionTable = ExecutionTable()
    monitor: MonitorTable = MonitorTable()
    journal: JournalTable = JournalTable()
    publisher: PublisherTable = PublisherTable()

    def __post_init__(self) -> None:
        if not self.instruments:
            raise ValueError("instruments: at least one instrument is needed")
        for raw in self.instruments:
            InstrumentId.from_str(raw)  # raises on a malformed id
        unknown = set(self.decision.instruments) - set(self.instruments)
        if unknown:
            raise ValueError(f"decision.instruments names instruments not traded: {unknown}")


def chain_config(raw: dict[str, Any], origin: str) -> ChainConfig:
    """Validate a ``[chain]`` table; ``origin`` (the file) goes into the error message."""
    try:
        return msgspec.convert(raw, ChainConfig)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ChainConfigError(f"{origin}: [chain] {str(exc).replace('$.', 'chain.')}") from exc


class TickTap(Actor):
    """Starts each tick's latency as it enters the chain (it subscribes first, so it runs
    first).

    Live (``live=True``) a tick starts at its ``ts_init``, the data client's receipt stamp,
    so the wait in the data engine's queue is part of every hop. ``send_stamps`` (the ZeroMQ
    feed client's ``(ts_init, ts_sent)`` pairs, in receipt order) adds the publisher's
    send time of each tick that has one.
    """

    def __init__(self, instrument_ids: list[str], latency: LatencyRecorder) -> None:
        super().__init__(ActorConfig(component_id="TickTap"))
        self._ids = [InstrumentId.from_str(i) for i in instrument_ids]
        self._latency = latency
        self.live = False
        self.send_stamps: deque[tuple[int, int]] | None = None

    def on_start(self) -> None:
        for iid in self._ids:
            self.subscribe_quote_ticks(iid)
            self.subscribe_trade_ticks(iid)

    def on_stop(self) -> None:
        """Nothing to release: the engine drops the actor's subscriptions itself."""

    def on_quote_tick(self, tick: QuoteTick) -> None:
        self._begin(tick.ts_init)

    def on_trade_tick(self, tick: TradeTick) -> None:
        self._begin(tick.ts_init)

    def _begin(self, ts_init: int) -> None:
        if not self.live:
            self._latency.tick()
            return
        sent = 0
        stamps = self.send_stamps
        # Stamps of messages no tap saw (books, other kinds) are older: drop them on the way.
        while stamps and stamps[0][0] <= ts_init:
            received, sent_at = stamps.popleft()
            if received == ts_init:
                sent = sent_at
                break
        self._latency.tick(ts_init, sent)


@dataclass
class Chain:
    """The built components, in the order they must be added to an engine or node."""

    features: FeatureActor
    signals: SignalActor
    decisions: DecisionActor
    risk: RiskActor
    execution: ExecutionStrategy
    monitor: TradeMonitorActor
    journal: JournalActor | None
    publisher: PublisherActor | None
    latency: LatencyRecorder | None
    tap: TickTap | None = None
    extra: list[Actor] = field(default_factory=list)

    @property
    def actors(self) -> list[Actor]:
        # Journal and publisher first: they subscribe before anything can emit.
        out: list[Actor] = [a for a in (self.journal, self.publisher, self.tap) if a is not None]
        out += [self.features, self.signals, self.decisions, self.risk, self.monitor]
        return out + self.extra

    @property
    def strategies(self) -> list[Strategy]:
        return [self.execution]


def build_chain(
    cfg: ChainConfig,
    *,
    run_id: str,
    reproducible_ids: bool,
    measure_latency: bool = False,
    store: str | None = None,
    recovered: Recovered | None = None,
) -> Chain:
    """Make every component of the chain; ``store`` overrides ``[chain.journal].store``;
    ``recovered`` (a live restart) hands over positions, stances and the kill switch."""
    ids = {"run_id": run_id, "reproducible_ids": reproducible_ids}
    instruments = list(cfg.instruments)
    store = cfg.journal.store if store is None else store
    journal = (
        JournalActor(
            JournalActorConfig(
                component_id="JournalActor",
                store=store,
                max_batch=cfg.journal.max_batch,
                max_delay_ms=cfg.journal.max_delay_ms,
                flush_every_ms=cfg.journal.flush_every_ms,
                writer=cfg.journal.writer,
            )
        )
        if store
        else None
    )
    publisher = (
        PublisherActor(
            PublisherActorConfig(
                component_id="PublisherActor",
                endpoint=cfg.publisher.endpoint,
                event_types=tuple(cfg.publisher.event_types),
                sndhwm=cfg.publisher.sndhwm,
            )
        )
        if cfg.publisher.endpoint
        else None
    )
    f = cfg.features
    restore, stances, tripped = _takeover(recovered, instruments)
    chain = Chain(
        features=FeatureActor(
            FeatureActorConfig(
                component_id="FeatureActor",
                instrument_ids=instruments,
                use_book=f.use_book,
                every_events=f.every_events,
                every_ms=f.every_ms,
            )
        ),
        signals=SignalActor(
            SignalActorConfig(
                component_id="SignalActor",
                instrument_ids=instruments,
                registry=cfg.signals.registry,
                model_versions=cfg.signals.model_versions,
                device=cfg.signals.device,
                require_device=cfg.signals.require_device,
                engine=cfg.signals.engine,
                adapt=cfg.signals.adapt,
                adapt_every=cfg.signals.adapt_every,
                **ids,
            )
        ),
        decisions=DecisionActor(
            DecisionActorConfig(
                component_id="DecisionActor",
                instrument_ids=instruments,
                policy=cfg.decision.policy,
                policies=cfg.decision.instruments,
                emit_holds=cfg.decision.emit_holds,
                stances=stances,
                **ids,
            )
        ),
        risk=RiskActor(
            RiskActorConfig(
                component_id="RiskActor",
                instrument_ids=instruments,
                limits_path=cfg.risk.limits,
                starting_equity=cfg.starting_equity,
                kill_switch_tripped=tripped,
                **ids,
            )
        ),
        execution=ExecutionStrategy(
            ExecutionStrategyConfig(
                order_id_tag="001",  # the strategy id: ExecutionStrategy-001
                instrument_ids=instruments,
                order_type=cfg.execution.order_type,
                time_in_force=cfg.execution.time_in_force,
                limit_offset_bps=cfg.execution.limit_offset_bps,
                flatten_on_stop=cfg.execution.flatten_on_stop,
                restore_positions=restore,
                **ids,
            )
        ),
        monitor=TradeMonitorActor(
            TradeMonitorActorConfig(
                component_id="TradeMonitorActor",
                instrument_ids=instruments,
                starting_equity=cfg.starting_equity,
                snapshot_every_ms=cfg.monitor.snapshot_every_ms,
                drawdown_alert=cfg.monitor.drawdown_alert,
                slippage_alert_bps=cfg.monitor.slippage_alert_bps,
                stale_after_ms=cfg.monitor.stale_after_ms,
                stale_check_ms=cfg.monitor.stale_check_ms,
                **ids,
            )
        ),
        journal=journal,
        publisher=publisher,
        latency=LatencyRecorder() if measure_latency else None,
    )
    if chain.latency is not None:
        chain.tap = TickTap(instruments, chain.latency)
        for part in (chain.signals, chain.decisions, chain.risk, chain.execution):
            part.latency = chain.latency
    return chain


def _takeover(
    recovered: Recovered | None, instruments: list[str]
) -> tuple[dict[str, float], dict[str, DecisionState], bool]:
    """Positions to restore, stances to keep and the kill switch, for the traded instruments.

    A stance is kept only where the position it built survives (same sign): after a clean
    stop that flattened, the next run starts flat in both.
    """
    if recovered is None:
        return {}, {}, False
    restore = {k: v for k, v in recovered.positions.items() if k in instruments and v}
    stances = {}
    for k, state in recovered.stances.items():
        held = restore.get(k, 0.0)
        if (state.stance == "LONG" and held > 0) or (state.stance == "SHORT" and held < 0):
            stances[k] = state
    return restore, stances, recovered.kill_switch_tripped
