"""SignalActor: feature rows in, ensemble signals out, one model per instrument.

The logic is :class:`tapereader.core.signals.SignalEngine`; this actor loads each
instrument's model from the registry when it starts (so a missing, mismatched or corrupt
bundle stops the start with the registry's error, before any tick), feeds it the
FeatureActor's vectors, and publishes what comes back: ``SignalGenerated`` (as a domain
event and as :class:`~tapereader.actors.messages.Signal` custom data) and
``EnsembleWeightsAdapted``. A row the model cannot score is reported as a ``model`` alert
and counted; no signal is made up for it.
"""

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.model.identifiers import InstrumentId

from tapereader.actors.bus import identity, publish_event
from tapereader.actors.feature_actor import FeatureVector, feature_data_type
from tapereader.actors.messages import Signal, signal_data_type
from tapereader.core.events import SignalGenerated, TradeMonitorAlert
from tapereader.core.features.spec import SPEC
from tapereader.core.latency import LatencyRecorder
from tapereader.core.models.adaptation import AdaptationConfig
from tapereader.core.models.bundle import Bundle
from tapereader.core.models.registry import Registry
from tapereader.core.models.runtime import EnsembleFailure, EnsembleInputError, EnsembleRuntime
from tapereader.core.signals import SignalEngine


class SignalActorConfig(ActorConfig, frozen=True):
    """Which instruments, which models (``model_versions``, else each one's active
    version in ``registry``), the device, the engine that serves each row (``auto``: the
    compiled evaluator of the graph on the CPU, see :meth:`SignalActor._runtime`), and
    online weight adaptation."""

    instrument_ids: list[str]
    registry: str
    model_versions: dict[str, str] = msgspec.field(default_factory=dict)
    device: str = "cpu"
    require_device: bool = False
    engine: str = "auto"
    adapt: bool = True
    adapt_every: int = 200
    run_id: str = ""
    reproducible_ids: bool = False


class SignalActor(Actor):
    """Serves the ensemble on every period-closing feature row of its instruments."""

    def __init__(self, config: SignalActorConfig) -> None:
        super().__init__(config)
        self._cfg = config
        self._engines: dict[InstrumentId, SignalEngine] = {}
        self._types: dict[InstrumentId, object] = {}
        self._source, self._ids = identity(str(self.id), config.run_id, config.reproducible_ids)
        self.latency: LatencyRecorder | None = None
        self.failures = 0

    @property
    def engines(self) -> dict[InstrumentId, SignalEngine]:
        return self._engines

    def on_start(self) -> None:
        """Load and verify every model, then subscribe to the feature rows."""
        cfg = self._cfg
        registry = Registry(cfg.registry)
        for raw in cfg.instrument_ids:
            version = cfg.model_versions.get(raw) or registry.active(raw)
            if version is None:
                raise RuntimeError(
                    f"no model for {raw}: none promoted in {cfg.registry} and none configured "
                    "(train one with `tapereader train --promote`)"
                )
            bundle = registry.load(version, feature_spec_hash=SPEC.hash)
            runtime = self._runtime(raw, bundle)
            iid = InstrumentId.from_str(raw)
            self._engines[iid] = SignalEngine(
                raw,
                runtime,
                source=self._source,
                ids=self._ids,
                adaptation=AdaptationConfig() if cfg.adapt else None,
                adapt_every=cfg.adapt_every,
            )
            self._types[iid] = signal_data_type(iid)
            status = runtime.status
            self.log.info(
                f"{raw}: model {version} on {runtime.serving_provider} ({status.state}"
                + (f": {'; '.join(status.reasons)})" if status.reasons else ")")
            )
            self.subscribe_data(feature_data_type(iid), instrument_id=iid)

    def _runtime(self, raw: str, bundle: Bundle) -> EnsembleRuntime:
        """The runtime for one instrument's bundle on the configured engine (``auto``: the
        compiled evaluator on the CPU; see ``EnsembleRuntime.from_bundle``)."""
        cfg = self._cfg  # an unknown engine is the runtime's ValueError, naming the choices
        runtime = EnsembleRuntime.from_bundle(
            bundle,
            device=cfg.device,  # type: ignore[arg-type]
            require_device=cfg.require_device,
            engine=cfg.engine,  # type: ignore[arg-type]
        )
        if runtime.fallback:
            self.log.warning(f"{raw}: {runtime.fallback}")
        return runtime

    def on_stop(self) -> None:
        """Nothing to release: the engine drops the actor's subscriptions itself."""

    def on_data(self, data: FeatureVector) -> None:
        """One feature row: score it when it closes a period and the window is full."""
        engine = self._engines[data.instrument_id]
        latency = self.latency
        if latency is not None:
            latency.hop("features")
        try:
            events = engine.on_row(
                data.values,
                kind=data.kind,
                seq=data.seq,
                ts_event=data.ts_event,
                ts_init=data.ts_init,
                bid=data.bid,
                ask=data.ask,
            )
        except (EnsembleInputError, EnsembleFailure) as exc:
            self._failed(data, exc)
            return
        for event in events:
            publish_event(self, event)
            if type(event) is SignalGenerated:
                if latency is not None:
                    latency.hop("signal")
                self.publish_data(
                    self._types[data.instrument_id], Signal(data.instrument_id, event)
                )

    def _failed(self, data: FeatureVector, exc: Exception) -> None:
        self.failures += 1
        self.log.error(f"{data.instrument_id}: no signal for the row at {data.ts_event}: {exc}")
        engine = self._engines[data.instrument_id]
        publish_event(
            self,
            TradeMonitorAlert(
                event_id=self._ids.next(data.ts_event),
                ts_event=data.ts_event,
                ts_init=data.ts_init,
                source=self._source,
                kind="model",
                severity="critical",
                message=f"model {engine.runtime.version} could not score a row: {exc}",
                instrument_id=str(data.instrument_id),
            ),
        )
