"""From feature rows to signals: one LSTM window per instrument, the ensemble, and its outcomes.

A :class:`SignalEngine` serves one instrument with one :class:`EnsembleRuntime`. It keeps the
rows a model was trained on (rows after a period-closing event: a quote or a book top; a
trade only updates the open period), and once its window is full it runs the ensemble on
every such row and returns a :class:`~tapereader.core.events.SignalGenerated` caused by the
feature row (:func:`~tapereader.core.ids.feature_row_id`).

It also learns from what happened next: each signal is labelled, once its horizon has
passed, exactly as training labelled its rows (the bundle's label parameters: the mid move
over the horizon against a cost-sized dead zone), and every ``adapt_every`` realized
outcomes of one regime take one bounded weight-adaptation step, returned as an
``EnsembleWeightsAdapted`` event and applied to the runtime's regime weights.
"""

import collections
import math
from dataclasses import dataclass

import msgspec
import numpy as np

from tapereader.core.events import DomainEvent, EnsembleWeightsAdapted, SignalGenerated, Source
from tapereader.core.features import kernel
from tapereader.core.ids import EventIds, feature_row_id
from tapereader.core.models.adaptation import AdaptationConfig, WeightAdapter, adaptation_event
from tapereader.core.models.bundle import REGIMES
from tapereader.core.models.runtime import EnsembleRuntime

DOWN, FLAT, UP = 0, 1, 2
DEFAULT_ADAPTATION = AdaptationConfig()


@dataclass(frozen=True)
class OutcomeRule:
    """How a signal's realized class is decided: the bundle's own label definition."""

    horizon_rows: int  # > 0: the row this many period rows later
    horizon_ns: int  # > 0 instead: the first row at least this much exchange time later
    cost_multiplier: float
    fee_rate: float
    max_span_ns: int

    @classmethod
    def from_label_params(cls, params: dict[str, float | int | str]) -> "OutcomeRule":
        """Read the ``label_*`` parameters a bundle's manifest records."""
        try:
            return cls(
                horizon_rows=int(params["horizon_events"]),
                horizon_ns=int(params["horizon_ns"]),
                cost_multiplier=float(params["cost_multiplier"]),
                fee_rate=float(params["fee_rate"]),
                max_span_ns=int(params["max_span_ns"]),
            )
        except KeyError as exc:
            raise ValueError(f"bundle label parameters lack {exc.args[0]!r}") from None

    def classify(self, mid_then: float, mid_now: float, spread_rel: float) -> int:
        move = mid_now / mid_then - 1.0
        dead = self.cost_multiplier * (spread_rel + 2.0 * self.fee_rate)
        return UP if move > dead else DOWN if move < -dead else FLAT


@dataclass
class _Pending:
    row: int
    ts_ns: int
    mid: float
    spread_rel: float
    regime: int
    members: np.ndarray  # [4, 3] float32, as the runtime returned it


class SignalEngine:
    """One instrument's window, ensemble calls and outcome bookkeeping."""

    def __init__(
        self,
        instrument_id: str,
        runtime: EnsembleRuntime,
        *,
        source: Source,
        ids: EventIds,
        adaptation: AdaptationConfig | None = DEFAULT_ADAPTATION,
        adapt_every: int = 200,
    ) -> None:
        m = runtime.bundle.manifest
        if m.instrument_id != instrument_id:
            raise ValueError(
                f"model {m.model_version} was trained on {m.instrument_id}, not {instrument_id}"
            )
        if adapt_every < 1:
            raise ValueError(f"adapt_every must be >= 1, got {adapt_every}")
        self.instrument_id = instrument_id
        self.runtime = runtime
        self._source = source
        self._ids = ids
        self._window = m.window
        self._n = m.n_features
        # Mirrored ring: row i is written at slots i % T and i % T + T, so the last T rows
        # are always one contiguous slice, oldest first.
        self._ring = np.zeros((2 * self._window, self._n), dtype=np.float32)
        self._rows = 0
        self._spread_col = m.feature_names.index("spread_rel")
        self._members = tuple(m.members)
        self._horizon = (
            f"{m.label_params['horizon_ns']} ns"
            if int(m.label_params.get("horizon_ns", 0)) > 0
            else f"{m.label_params.get('horizon_events')} rows"
        )
        self._rule = OutcomeRule.from_label_params(m.label_params)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._adapters = (
            None
            if adaptation is None
            else [
                WeightAdapter(runtime.regime_weights[r], adaptation, regime=REGIMES[r])
                for r in range(len(REGIMES))
            ]
        )
        self._adapt_every = adapt_every
        self._realized: list[list[tuple[np.ndarray, int]]] = [[] for _ in REGIMES]
        self.signals = 0
        self.outcomes = 0

    @property
    def warm(self) -> bool:
        """True once the window holds as many rows as the model needs."""
        return self._rows >= self._window

    def on_row(
        self,
        row: np.ndarray,
        *,
        kind: int,
        seq: int,
        ts_event: int,
        ts_init: int,
        bid: float,
        ask: float,
    ) -> list[DomainEvent]:
        """Fold one feature row; returns the events it produced (adaptations, then the
        signal), none for a trade row or while the window fills.

        Raises the runtime's ``EnsembleInputError``/``EnsembleFailure``: a row the model
        cannot score is an error for the caller to report, never a made-up signal.
        """
        if kind == kernel.KIND_TRADE:
            return []
        t = self._rows % self._window
        self._ring[t] = row
        self._ring[t + self._window] = row
        self._rows += 1
        mid = (bid + ask) / 2.0
        events: list[DomainEvent] = self._realize(ts_event, mid, ts_init)
        if self._rows < self._window:
            return events
        start = t + 1
        window = self._ring[start : start + self._window]
        pred = self.runtime.predict_one(window[-1], window)
        ens = pred.ensemble[0]
        members = pred.members[0]
        regime = int(pred.regime[0])
        row_id = feature_row_id(self.instrument_id, seq, ts_event)
        signal = SignalGenerated(
            event_id=self._ids.next(ts_event),
            ts_event=ts_event,
            ts_init=ts_init,
            source=self._source,
            causation_id=row_id,
            correlation_id=row_id,
            instrument_id=self.instrument_id,
            model_version=pred.model_version,
            feature_spec_hash=self.runtime.bundle.manifest.feature_spec_hash,
            horizon=self._horizon,
            p_down=_prob(ens[DOWN]),
            p_flat=_prob(ens[FLAT]),
            p_up=_prob(ens[UP]),
            confidence=_prob(pred.confidence[0]),
            members=dict(zip(self._members, map(_prob, members[:, UP].tolist()), strict=True)),
            provider=pred.provider,
            regime=REGIMES[regime],
            status=self.runtime.status.state,
            bid=bid if bid > 0 else None,
            ask=ask if ask > 0 else None,
            window=self._window,
        )
        self.signals += 1
        if self._adapters is not None and mid > 0 and math.isfinite(mid):
            spread = float(row[self._spread_col])
            self._pending.append(_Pending(self._rows, ts_event, mid, spread, regime, members))
        events.append(signal)
        return events

    def _realize(self, ts_now: int, mid_now: float, ts_init: int) -> list[DomainEvent]:
        """Label the pending signals whose horizon the newest row reaches."""
        events: list[DomainEvent] = []
        rule = self._rule
        while self._pending:
            p = self._pending[0]
            if rule.horizon_ns > 0:
                if ts_now < p.ts_ns + rule.horizon_ns:
                    break
            elif self._rows - p.row < rule.horizon_rows:
                break
            self._pending.popleft()
            if ts_now - p.ts_ns > rule.max_span_ns or not mid_now > 0:
                continue  # training drops labels across such gaps; so does adaptation
            outcome = rule.classify(p.mid, mid_now, p.spread_rel)
            self.outcomes += 1
            batch = self._realized[p.regime]
            batch.append((p.members, outcome))
            if len(batch) >= self._adapt_every:
                events.append(self._adapt(p.regime, batch, ts_now, ts_init))
                batch.clear()
        return events

    def _adapt(
        self, regime: int, batch: list[tuple[np.ndarray, int]], ts_now: int, ts_init: int
    ) -> EnsembleWeightsAdapted:
        adapter = self._adapters[regime]  # type: ignore[index]  # only called when adapting
        probs = np.stack([b[0] for b in batch]).astype(np.float64)
        outcomes = np.array([b[1] for b in batch], dtype=np.int64)
        update = adapter.update(probs, outcomes)
        self.runtime.set_regime_weights(regime, np.asarray(update.after))
        event = adaptation_event(
            update, model_version=self.runtime.version, source=self._source, ts_ns=ts_now
        )
        return msgspec.structs.replace(event, event_id=self._ids.next(ts_now), ts_init=ts_init)


def _prob(x: float) -> float:
    # float32 softmax outputs can land a hair outside [0, 1]; the runtime has already checked
    # the distribution, so clamping only removes rounding, never a real error.
    return min(1.0, max(0.0, float(x)))
