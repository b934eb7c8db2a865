"""What a live node exposes to Prometheus: flow counters, account gauges, hop latencies."""

from collections.abc import Sequence

from tapereader.actors.chain import Chain
from tapereader.core.metrics import Sample, latency_samples


def chain_samples(chain: Chain, feeds: Sequence[object] = ()) -> list[Sample]:
    """Samples read from a running chain (and its feed clients' counters)."""
    c = "counter"
    out = [
        Sample(
            "tapereader_signals_total",
            float(sum(e.signals for e in chain.signals.engines.values())),
            c,
            "signals generated",
        ),
        Sample(
            "tapereader_model_failures_total",
            float(chain.signals.failures),
            c,
            "feature rows the model could not score",
        ),
        Sample(
            "tapereader_decisions_total",
            float(chain.decisions.decisions),
            c,
            "decisions made (HOLD included)",
        ),
        Sample(
            "tapereader_risk_verdicts_total",
            float(chain.risk.approved),
            c,
            "risk verdicts",
            {"verdict": "approved"},
        ),
        Sample(
            "tapereader_risk_verdicts_total",
            float(chain.risk.rejected),
            c,
            "risk verdicts",
            {"verdict": "rejected"},
        ),
        Sample(
            "tapereader_orders_submitted_total",
            float(chain.execution.submitted),
            c,
            "orders submitted",
        ),
        Sample("tapereader_alerts_total", float(chain.monitor.alerts), c, "trade monitor alerts"),
        Sample(
            "tapereader_kill_switch_tripped",
            float(chain.risk.engine.kill_switch_tripped),
            help="1 while the drawdown kill switch is tripped",
        ),
    ]
    ledger = chain.monitor.ledger
    out += [
        Sample("tapereader_equity", ledger.equity, help="account equity (monitor's ledger)"),
        Sample(
            "tapereader_realized_pnl", ledger.realized_pnl, help="realized P&L, net of commissions"
        ),
        Sample(
            "tapereader_unrealized_pnl",
            ledger.unrealized_pnl,
            help="unrealized P&L at the last marks",
        ),
        Sample("tapereader_drawdown", ledger.drawdown, help="drawdown from peak equity"),
    ]
    if chain.journal is not None:
        out += [
            Sample(
                "tapereader_journal_events_total",
                float(chain.journal.journaled),
                c,
                "domain events taken by the journal",
            ),
            Sample(
                "tapereader_journal_unwritten",
                float(len(chain.journal.unwritten)),
                help="events the store refused, held in memory",
            ),
        ]
    for feed in feeds:
        stats = feed.stats  # type: ignore[attr-defined]
        out += [
            Sample(
                "tapereader_feed_messages_total",
                float(stats.received),
                c,
                "feed messages handed to the engine",
            ),
            Sample(
                "tapereader_feed_garbage_total",
                float(stats.garbage),
                c,
                "feed frames skipped as garbage",
            ),
        ]
    if chain.latency is not None:
        out.append(
            Sample(
                "tapereader_ticks_total",
                float(chain.latency.ticks),
                c,
                "ticks that entered the chain",
            )
        )
        out += latency_samples(
            "tapereader_hop_latency_seconds",
            chain.latency.samples(),
            "wall time from the data client's receipt of a tick to each hop; wire: from "
            "the feed publisher's send to receipt; feed_to_order: from send to order submitted",
        )
    return out
