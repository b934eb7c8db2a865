"""``tapereader live``: the backtested actor chain in a live TradingNode, paper trading.

The node (on uvloop) takes ticks from the ZeroMQ tick feed (``ingest/zmq_feed.py``; run
``tapereader feed replay`` to play recorded ticks on it) and trades through NautilusTrader's
sandbox execution client, one per venue. The chain comes from the same
:func:`~tapereader.actors.chain.build_chain` the backtests use, with random event ids and a
journal that hands events to the store at least every ``journal_flush_ms``.

SIGINT or SIGTERM (or ``stop_after_s``) stops it gracefully: the node stops its components
(the strategy cancels open orders and flattens when ``[chain.execution] flatten_on_stop``;
the journal writes everything it holds), ``RunCompleted`` is appended, and the process exits 0.
"""

import argparse
import asyncio
import contextlib
import signal
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import msgspec


class LiveConfigError(ValueError):
    """A live configuration that cannot be used; the message names the file and key."""


class LiveVenue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One sandbox (paper) venue."""

    name: str
    starting_balances: list[str]
    base_currency: str | None = None
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    account_type: Literal["MARGIN", "CASH"] = "MARGIN"
    default_leverage: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0


class LiveTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The node: identity, feed, venues, store and shutdown."""

    trader_id: str = "TAPEREADER-001"
    feed_endpoint: str = "tcp://127.0.0.1:5555"
    instrument_files: list[str] = msgspec.field(default_factory=list)
    venues: list[LiveVenue]
    store: str = "var/events.db"
    journal_flush_ms: Annotated[int, msgspec.Meta(gt=0)] = 50
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    stop_after_s: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0  # 0: until a signal
    settle_timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] = 15.0  # cancels and flattening
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 9464  # 0: no /metrics


def load_live_config(path: str | Path):  # -> (LiveTable, ChainConfig)
    """Read and validate a live TOML file (tables ``[live]`` and ``[chain]``)."""
    from tapereader.actors.chain import ChainConfigError, chain_config
    from tapereader.core.tomlfile import read_tables

    path = Path(path)
    raw = read_tables(path, ["live", "chain"], LiveConfigError, only=True)
    try:
        live = msgspec.convert(raw["live"], LiveTable)
    except msgspec.ValidationError as exc:
        raise LiveConfigError(f"{path}: [live] {str(exc).replace('$.', 'live.')}") from exc
    try:
        chain = chain_config(raw["chain"], str(path))
    except ChainConfigError as exc:
        raise LiveConfigError(str(exc)) from exc
    venues = {v.name for v in live.venues}
    for instrument in chain.instruments:
        if instrument.rsplit(".", 1)[-1] not in venues:
            raise LiveConfigError(f"{path}: no [[live.venues]] for {instrument}")
    return live, chain


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``live``."""
    p = subparsers.add_parser("live", help="paper-trade the actor chain on the live tick feed")
    p.add_argument("--config", default="config/live_paper.toml", help="(default %(default)s)")
    p.add_argument("--run-id", help="default: live-<random>")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="do not take over positions, stances and the kill switch from the last run",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        live, chain = load_live_config(args.config)
    except LiveConfigError as exc:
        print(f"tapereader live: {exc}", file=sys.stderr)
        return 2
    return run_node(
        live, chain, run_id=args.run_id or f"live-{uuid.uuid4().hex[:10]}", resume=not args.fresh
    )


def previous_run(store_url: str):  # -> Recovered | None
    """What the latest paper run in the store left behind (None when there is none)."""
    from tapereader.core.recovery import last_run, recover
    from tapereader.core.store import EventStore

    with EventStore.open(store_url) as store:
        events = [r.event for r in store.read()]
    run_id = last_run(events, kinds=("paper", "live"))
    return None if run_id is None else recover(events, run_id)


def run_node(live: LiveTable, chain_cfg, *, run_id: str, resume: bool = True) -> int:
    """Build, run and stop the node; returns the exit status.

    With ``resume``, the latest paper run in the store hands over its positions (restored on
    the paper venue at the first quote), decision stances and kill switch.
    """
    import uvloop
    from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
    from nautilus_trader.adapters.sandbox.factory import SandboxLiveExecClientFactory
    from nautilus_trader.config import LoggingConfig, TradingNodeConfig
    from nautilus_trader.live.node import TradingNode

    from tapereader.actors.chain import build_chain
    from tapereader.core.events import RunCompleted, RunStarted, Source
    from tapereader.core.metrics import MetricsServer
    from tapereader.core.store import EventStore
    from tapereader.ingest.zmq_feed import ZmqFeedDataClientConfig, ZmqFeedDataClientFactory
    from tapereader.live_metrics import chain_samples

    feeds: list = []

    class FeedFactory(ZmqFeedDataClientFactory):
        """Keeps the feed client it builds, for its counters in /metrics."""

        @staticmethod
        def create(loop, name, config, msgbus, cache, clock):  # type: ignore[no-untyped-def, override]
            client = ZmqFeedDataClientFactory.create(loop, name, config, msgbus, cache, clock)
            feeds.append(client)
            return client

    feed = "ZMQFEED"
    chain_cfg = msgspec.structs.replace(
        chain_cfg,
        journal=msgspec.structs.replace(
            chain_cfg.journal, store=live.store, flush_every_ms=live.journal_flush_ms
        ),
    )
    if "://" not in live.store:
        Path(live.store).parent.mkdir(parents=True, exist_ok=True)
    recovered = previous_run(live.store) if resume else None
    if recovered is not None:
        print(f"tapereader live: taking over from {recovered.describe()}", flush=True)
    chain = build_chain(
        chain_cfg,
        run_id=run_id,
        reproducible_ids=False,
        measure_latency=True,
        recovered=recovered,
    )
    config = TradingNodeConfig(
        trader_id=live.trader_id,
        logging=LoggingConfig(log_level=live.log_level),
        data_clients={
            feed: ZmqFeedDataClientConfig(
                endpoint=live.feed_endpoint,
                instrument_ids=list(chain_cfg.instruments),
                instrument_files=tuple(live.instrument_files),
            )
        },
        exec_clients={
            v.name: SandboxExecutionClientConfig(
                venue=v.name,
                starting_balances=list(v.starting_balances),
                base_currency=v.base_currency,
                oms_type=v.oms_type,
                account_type=v.account_type,
                default_leverage=Decimal(str(v.default_leverage)),
            )
            for v in live.venues
        },
        timeout_connection=10.0,
        timeout_reconciliation=5.0,
        timeout_portfolio=5.0,
        timeout_disconnection=5.0,
        timeout_post_stop=1.0,
    )
    source = Source(component="tapereader.live", run_id=run_id)
    with EventStore.open(live.store) as store:
        now = time.time_ns()
        store.append(
            [
                RunStarted(
                    ts_event=now,
                    ts_init=now,
                    source=source,
                    kind="paper",
                    config_hash=uuid.uuid5(uuid.NAMESPACE_OID, repr(chain_cfg)).hex[:16],
                    parameters={
                        "feed": live.feed_endpoint,
                        "run_id": run_id,
                        "recovered": recovered.describe() if recovered else "nothing",
                        "recovered_from": recovered.run_id if recovered else "",
                    },
                )
            ]
        )
    nodes: list[TradingNode] = []
    status = "succeeded"

    async def main() -> None:
        loop = asyncio.get_running_loop()
        node = TradingNode(config, loop=loop)
        nodes.append(node)
        node.add_data_client_factory(feed, FeedFactory)
        for v in live.venues:
            node.add_exec_client_factory(v.name, SandboxLiveExecClientFactory)
        for actor in chain.actors:
            node.trader.add_actor(actor)
        for strategy in chain.strategies:
            node.trader.add_strategy(strategy)
        node.build()
        # Replace the node's own SIGINT/SIGTERM handlers (which stop it at once): the
        # strategy must wind down while the node still processes its orders' events.
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = asyncio.create_task(node.run_async())
        print(f"tapereader live: run {run_id}, feed {live.feed_endpoint}", flush=True)
        with contextlib.suppress(TimeoutError):  # stop_after_s elapsed: stop as on a signal
            await asyncio.wait_for(stop.wait(), live.stop_after_s or None)
        print("tapereader live: stopping: no new decisions, cancel, flatten", flush=True)
        execution = chain.execution
        execution.wind_down()
        deadline = loop.time() + live.settle_timeout_s
        while not execution.settled and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if not execution.settled:
            print("tapereader live: orders or positions still open at the stop", flush=True)
        await node.stop_async()
        await asyncio.wait_for(running, 30)
        print("tapereader live: stopped", flush=True)

    metrics = (
        MetricsServer(lambda: chain_samples(chain, feeds), live.metrics_port)
        if live.metrics_port
        else None
    )
    if metrics is not None:
        print(f"tapereader live: metrics on {metrics.url}", flush=True)
    try:
        uvloop.run(main())
    except Exception as exc:
        status = "failed"
        print(f"tapereader live: {exc}", file=sys.stderr)
    finally:
        for node in nodes:
            node.dispose()  # outside the loop: dispose closes it
        if metrics is not None:
            metrics.close()
    with EventStore.open(live.store) as store:
        now = time.time_ns()
        summary = {
            "signals": float(sum(e.signals for e in chain.signals.engines.values())),
            "decisions": float(chain.decisions.decisions),
            "orders": float(chain.execution.submitted),
            "unwritten": float(len(chain.journal.unwritten)),  # type: ignore[union-attr]
        }
        store.append(
            [RunCompleted(ts_event=now, ts_init=now, source=source, status=status, summary=summary)]
        )
    print(f"tapereader live: {status}; {summary}", flush=True)
    return 0 if status == "succeeded" and not summary["unwritten"] else 1
