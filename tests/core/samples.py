"""One realistic instance of every domain event, chained the way a fill traces back."""

import uuid

from tapereader.core import events as ev

T0 = 1_723_161_255_000_000_000  # 2024-08-08 23:54:15 UTC, the Binance feed's first second
RUN = ev.Source(component="tests", run_id="run-1")
INSTR = "BTCUSDT-PERP.BINANCE"


def sample_events(ts: int = T0, instrument_id: str = INSTR) -> list[ev.DomainEvent]:
    """Every event type once, with causation and correlation ids set as the chain sets them."""
    corr = uuid.uuid4()
    src = RUN
    sig = ev.SignalGenerated(
        ts_event=ts, ts_init=ts + 40_000, source=src, correlation_id=corr,
        instrument_id=instrument_id, model_version="2024.08.08-1", feature_spec_hash="a1b2c3",
        horizon="50 events", p_up=0.61, p_down=0.14, p_flat=0.25, confidence=0.72,
        members={"lr": 0.58, "rf": 0.64, "xgb": 0.66, "lstm": 0.55},
    )
    dec = ev.DecisionMade(
        ts_event=ts + 1, ts_init=ts + 50_000, source=src, causation_id=sig.event_id,
        correlation_id=corr, instrument_id=instrument_id, action="BUY", target_position=0.01,
        reference_price=61_234.5, reasons=["p_up 0.61 > 0.60", "confidence 0.72 > 0.50"],
        thresholds={"enter": 0.6, "exit": 0.52},
    )
    risk = ev.RiskVerdict(
        ts_event=ts + 2, ts_init=ts + 55_000, source=src, causation_id=dec.event_id,
        correlation_id=corr, instrument_id=instrument_id, decision_id=dec.event_id,
        approved=True,
    )
    sub = ev.OrderSubmitted(
        ts_event=ts + 3, ts_init=ts + 60_000, source=src, causation_id=risk.event_id,
        correlation_id=corr, instrument_id=instrument_id, client_order_id="O-1",
        side="BUY", order_type="LIMIT", quantity=0.01, price=61_234.5, time_in_force="IOC",
    )
    common = {"source": src, "correlation_id": corr, "instrument_id": instrument_id}
    return [
        sig, dec, risk, sub,
        ev.OrderAccepted(ts_event=ts + 4, ts_init=ts + 4, causation_id=sub.event_id,
                         client_order_id="O-1", venue_order_id="V-9", **common),
        ev.OrderRejected(ts_event=ts + 5, ts_init=ts + 5, client_order_id="O-2",
                         reason="insufficient margin", **common),
        ev.OrderFilled(ts_event=ts + 6, ts_init=ts + 6, causation_id=sub.event_id,
                       client_order_id="O-1", venue_order_id="V-9", trade_id="T-77",
                       side="BUY", last_qty=0.01, last_px=61_234.4, commission=0.245,
                       commission_currency="USDT", **common),
        ev.OrderCancelled(ts_event=ts + 7, ts_init=ts + 7, client_order_id="O-3",
                          reason="IOC expired", **common),
        ev.PositionOpened(ts_event=ts + 8, ts_init=ts + 8, position_id="P-1", side="LONG",
                          quantity=0.01, avg_px_open=61_234.4, **common),
        ev.PositionChanged(ts_event=ts + 9, ts_init=ts + 9, position_id="P-1", side="LONG",
                           quantity=0.02, avg_px_open=61_230.0, realized_pnl=0.0,
                           unrealized_pnl=1.2, **common),
        ev.PositionClosed(ts_event=ts + 10, ts_init=ts + 10, position_id="P-1",
                          realized_pnl=3.4, avg_px_open=61_230.0, avg_px_close=61_400.0,
                          duration_ns=42_000_000_000, **common),
        ev.PnlSnapshot(ts_event=ts + 11, ts_init=ts + 11, source=src, realized_pnl=3.4,
                       unrealized_pnl=0.0, exposure=0.0, drawdown=1.1, currency="USDT"),
        ev.TradeMonitorAlert(ts_event=ts + 12, ts_init=ts + 12, source=src, kind="slippage",
                             severity="warning", message="fill 2.1 bps worse than reference",
                             instrument_id=instrument_id, value=2.1, threshold=2.0),
        ev.ModelTrained(ts_event=ts + 13, ts_init=ts + 13, source=src,
                        model_version="2024.08.08-1", feature_spec_hash="a1b2c3",
                        data_start_ns=ts - 10**12, data_end_ns=ts, label_definition="mid 50ev",
                        metrics={"log_loss": 0.68, "auc": 0.54}, sha256="ab" * 32,
                        artifact="models/2024.08.08-1/ensemble.onnx"),
        ev.ModelPromoted(ts_event=ts + 14, ts_init=ts + 14, source=src,
                         model_version="2024.08.08-1", previous_version=None, metric="log_loss",
                         candidate_score=0.68, incumbent_score=None),
        ev.ModelRejected(ts_event=ts + 15, ts_init=ts + 15, source=src,
                         model_version="2024.08.08-2", incumbent_version="2024.08.08-1",
                         metric="log_loss", candidate_score=0.70, incumbent_score=0.68,
                         reason="worse log-loss on the same held-out data"),
        ev.ModelRolledBack(ts_event=ts + 16, ts_init=ts + 16, source=src,
                           model_version="2024.08.08-1", from_version="2024.08.08-3",
                           reason="live log-loss above threshold"),
        ev.DriftDetected(ts_event=ts + 17, ts_init=ts + 17, source=src,
                         model_version="2024.08.08-1", statistic="psi", subject="spread_rel",
                         value=0.31, threshold=0.2, window=5000),
        ev.RunStarted(ts_event=ts + 18, ts_init=ts + 18, source=src, kind="backtest",
                      config_hash="cfg1", parameters={"catalog": "catalog"}),
        ev.RunCompleted(ts_event=ts + 19, ts_init=ts + 19, source=src, status="succeeded",
                        summary={"pnl": 3.4, "orders": 3}),
        ev.DataIngested(ts_event=ts + 20, ts_init=ts + 20, source=src,
                        path="hftbt_binance-usdm_btcusdt_20240808_rawfeed.gz",
                        data_format="binance-rawfeed", sha256="cd" * 32,
                        instrument_ids=[instrument_id], rows_read={"trades": 21313},
                        rows_written={"trades": 21313}, start_ns=ts, end_ns=ts + 10**9),
        ev.ScannerFileSubmitted(ts_event=ts + 21, ts_init=ts + 21, source=src,
                                file_sha256="ef" * 32, path="scanners.py", size_bytes=51234,
                                line_count=1500),
        ev.ScannerBoundariesDetected(
            ts_event=ts + 22, ts_init=ts + 22, source=src, file_sha256="ef" * 32,
            scanners=[ev.ScannerBoundary(name="gap_up", kind="function", start_line=10,
                                         end_line=120)],
        ),
        ev.ScannerParametersIsolated(ts_event=ts + 23, ts_init=ts + 23, source=src,
                                     file_sha256="ef" * 32, scanner="gap_up",
                                     parameters={"price_min": "5.0", "vol_mult": "2.5"}),
        ev.ScannerContaminationFound(ts_event=ts + 24, ts_init=ts + 24, source=src,
                                     file_sha256="ef" * 32, scanner="gap_up", name="P",
                                     owner="momentum", line=88, detail="reads P defined later"),
        ev.ScannerSecurityFinding(ts_event=ts + 25, ts_init=ts + 25, source=src,
                                  file_sha256="ef" * 32, rule="hardcoded-secret",
                                  severity="critical", line=3, column=0,
                                  message="API key literal", scanner=None),
        ev.ScannerGenerated(ts_event=ts + 26, ts_init=ts + 26, source=src,
                            file_sha256="ef" * 32, scanner="gap_up",
                            output_path="out/gap_up.py", output_sha256="12" * 32),
    ]
