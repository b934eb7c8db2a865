"""``tapereader backtest`` and ``tapereader whatif``."""

import argparse
import sys
from pathlib import Path


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``backtest`` and ``whatif``."""
    bt = subparsers.add_parser(
        "backtest", help="replay the actor chain over catalog ticks and write a report"
    )
    bt.add_argument("--config", default="config/backtest.toml", help="(default %(default)s)")
    bt.add_argument("--run-id", help="seeds the event ids: the same id replays identically")
    bt.add_argument("--store", help="event store (default: [backtest].store)")
    bt.add_argument("--report-dir", help="where reports go (default: [backtest].report_dir)")
    bt.add_argument("--publish", help="also publish signals on this ZeroMQ endpoint")
    bt.set_defaults(run=run_backtest_command)

    wi = subparsers.add_parser(
        "whatif", help="re-run decision and risk over a run's recorded signals"
    )
    wi.add_argument("--config", default="config/backtest.toml", help="the settings to try")
    wi.add_argument("--run-id", required=True, help="the recorded run whose signals to use")
    wi.add_argument("--store", help="event store (default: [backtest].store)")
    wi.add_argument("--enter", type=float, help="override the policy's enter threshold")
    wi.add_argument("--exit", type=float, help="override the policy's exit threshold")
    wi.add_argument("--min-confidence", type=float, help="override the policy's min confidence")
    wi.set_defaults(run=run_whatif_command)


def _config(path: str):  # -> BacktestConfig | None; imported late: Nautilus is slow to load
    from tapereader.replay.backtest_config import BacktestConfigError, load_backtest_config

    try:
        return load_backtest_config(path)
    except BacktestConfigError as exc:
        print(f"tapereader: {exc}", file=sys.stderr)
        return None


def run_backtest_command(args: argparse.Namespace) -> int:
    import msgspec

    from tapereader.replay.backtest import BacktestError, print_summary, run_backtest

    cfg = _config(args.config)
    if cfg is None:
        return 2
    if args.publish:
        publisher = msgspec.structs.replace(cfg.chain.publisher, endpoint=args.publish)
        cfg = msgspec.structs.replace(
            cfg, chain=msgspec.structs.replace(cfg.chain, publisher=publisher)
        )
    try:
        result = run_backtest(
            cfg,
            run_id=args.run_id,
            store=args.store,
            report_dir=args.report_dir,
            progress=lambda msg: print(f"   {msg}", flush=True),
        )
    except (BacktestError, FileNotFoundError, RuntimeError) as exc:
        print(f"tapereader backtest: {exc}", file=sys.stderr)
        return 1
    print_summary(result)
    print(f"\nreport: {result.html}\n        {result.json}")
    print(f"events: {args.store or cfg.backtest.store} (run {result.run_id})")
    return 0 if result.reconciliation.ok else 1


def run_whatif_command(args: argparse.Namespace) -> int:
    import msgspec
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from tapereader.core.risk import RiskConfigError, load_limits
    from tapereader.core.store import EventStore
    from tapereader.replay.backtest import run_events
    from tapereader.replay.whatif import InstrumentTerms, what_if

    cfg = _config(args.config)
    if cfg is None:
        return 2
    chain = cfg.chain
    overrides = {
        k: v
        for k, v in (
            ("enter", args.enter),
            ("exit", args.exit),
            ("min_confidence", args.min_confidence),
        )
        if v is not None
    }
    try:
        policies = {
            i: _with(chain.decision.instruments.get(i, chain.decision.policy), overrides)
            for i in chain.instruments
        }
        limits = load_limits(chain.risk.limits)
    except (msgspec.ValidationError, RiskConfigError) as exc:
        print(f"tapereader whatif: {exc}", file=sys.stderr)
        return 2
    terms = {}
    for instrument in ParquetDataCatalog(cfg.backtest.catalog).instruments(
        instrument_ids=list(chain.instruments)
    ):
        terms[instrument.id.value] = InstrumentTerms(
            taker_fee=float(instrument.taker_fee),
            multiplier=instrument.multiplier.as_double(),
            size_step=instrument.size_increment.as_double(),
        )
    store = args.store or cfg.backtest.store
    with EventStore.open(store) as es:
        events = run_events(es, args.run_id)
    if not events:
        print(f"tapereader whatif: no events of run {args.run_id} in {store}", file=sys.stderr)
        return 1
    result = what_if(
        events,
        policies=policies,
        limits=limits,
        terms=terms,
        starting_equity=chain.starting_equity,
    )
    print(f"what-if over run {args.run_id} with {Path(args.config).name} {overrides or ''}")
    for key, value in result.summary().items():
        print(f"  {key:<16} {value:>14,.2f}")
    if result.rejections:
        print("  rejected by rule: " + ", ".join(f"{k} {v}" for k, v in result.rejections.items()))
    return 0


def _with(policy, overrides: dict[str, float]):  # DecisionPolicy in and out
    import msgspec

    from tapereader.core.decision import DecisionPolicy

    # Through convert, so the policy's own checks (bounds, exit below enter) run again.
    return msgspec.convert(msgspec.to_builtins(policy) | overrides, DecisionPolicy)
