"""``tapereader live``: the backtested actor chain in a live TradingNode, paper trading.

The node (on uvloop) takes ticks from the ZeroMQ tick feed (``ingest/zmq_feed.py``; run
``tapereader feed replay`` to play recorded ticks on it) and trades through NautilusTrader's
sandbox execution client, one per venue. A venue with an ``adapter`` table takes its market
data from Binance or Bybit through NautilusTrader's adapters instead, and may send orders to
the venue itself (``tapereader/live_venues.py``, docs/VENUES.md). The chain comes from the same
:func:`~tapereader.actors.chain.build_chain` the backtests use, with random event ids and a
journal that hands events to the store at least every ``journal_flush_ms``.

SIGINT or SIGTERM (or ``stop_after_s``) stops it gracefully: the node stops its components
(the strategy cancels open orders and flattens when ``[chain.execution] flatten_on_stop``;
the journal writes everything it holds), ``RunCompleted`` is appended, and the process exits 0.
"""

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from tapereader.live_venues import (
    BinanceAdapter,
    BybitAdapter,
    LiveConfigError,
    check_venues,
    refuse_secrets,
)

__all__ = ["LiveConfigError", "LiveTable", "LiveVenue", "load_live_config", "run_node"]


class LiveVenue(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One venue: market data from the feed or an adapter; orders to the sandbox or the
    venue. The sandbox fields (balances, OMS, account, leverage) apply to paper execution."""

    name: str
    starting_balances: list[str] = msgspec.field(default_factory=list)
    base_currency: str | None = None
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    account_type: Literal["MARGIN", "CASH"] = "MARGIN"
    default_leverage: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    adapter: BinanceAdapter | BybitAdapter | None = None  # None: ticks from the ZeroMQ feed


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
    # How long clients may take to connect; an adapter fetches instrument definitions first.
    connect_timeout_s: Annotated[float, msgspec.Meta(gt=0.0)] = 10.0
    # How long a thread holding the GIL keeps it while another waits (Python's default is 5
    # ms): the engine thread gets it back from the writer's, metrics' and clock's threads
    # sooner. Measured in docs/BENCHMARKS.md (live node latency).
    gil_switch_interval_ms: Annotated[float, msgspec.Meta(gt=0.0, le=100.0)] = 0.5


def load_live_config(path: str | Path):  # -> (LiveTable, ChainConfig)
    """Read and validate a live TOML file (tables ``[live]`` and ``[chain]``)."""
    from tapereader.actors.chain import ChainConfigError, chain_config
    from tapereader.core.tomlfile import read_tables

    path = Path(path)
    raw = read_tables(path, ["live", "chain"], LiveConfigError, only=True)
    refuse_secrets(raw, str(path))
    try:
        live = msgspec.convert(raw["live"], LiveTable)
    except msgspec.ValidationError as exc:
        raise LiveConfigError(f"{path}: [live] {str(exc).replace('$.', 'live.')}") from exc
    try:
        chain = chain_config(raw["chain"], str(path))
    except ChainConfigError as exc:
        raise LiveConfigError(str(exc)) from exc
    check_venues(live.venues, chain.instruments, str(path))
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
        live,
        chain,
        run_id=args.run_id or f"live-{uuid.uuid4().hex[:10]}",
        resume=not args.fresh,
        config_path=args.config,
    )


def previous_run(store_url: str):  # -> Recovered | None
    """What the latest paper run in the store left behind (None when there is none)."""
    from tapereader.core.recovery import last_run, recover
    from tapereader.core.store import EventStore

    with EventStore.open(store_url) as store:
        events = [r.event for r in store.read()]
    run_id = last_run(events, kinds=("paper", "live"))
    return None if run_id is None else recover(events, run_id)


def run_parameters(live: LiveTable, env_vars: dict[str, tuple[str, str]]) -> dict[str, str]:
    """What RunStarted records of the node's venues: sources, networks and the NAMES of the
    key variables, never their values."""
    from tapereader.live_venues import describe

    out = {f"venue.{v.name}": describe(v) for v in live.venues}
    for venue, names in env_vars.items():
        out[f"venue.{venue}.key_env"] = ",".join(names)
    return out


def run_node(
    live: LiveTable,
    chain_cfg,
    *,
    run_id: str,
    resume: bool = True,
    config_path: str = "live config",
) -> int:
    """Build, run and stop the node; returns the exit status.

    With ``resume``, the latest paper run in the store hands over its positions (restored on
    the paper venue at the first quote), decision stances and kill switch. ``config_path``
    names the config in error messages.
    """
    import uvloop
    from nautilus_trader.config import LoggingConfig, TradingNodeConfig
    from nautilus_trader.live.node import TradingNode

    from tapereader.actors.chain import build_chain
    from tapereader.core.events import RunCompleted, RunStarted, Source
    from tapereader.core.metrics import MetricsServer
    from tapereader.core.store import EventStore
    from tapereader.ingest.zmq_feed import ZmqFeedDataClientFactory
    from tapereader.live_metrics import chain_samples
    from tapereader.live_venues import FEED, describe, mainnet_warnings, node_clients

    feeds: list = []

    class FeedFactory(ZmqFeedDataClientFactory):
        """Keeps the feed client it builds, for its counters in /metrics."""

        @staticmethod
        def create(loop, name, config, msgbus, cache, clock):  # type: ignore[no-untyped-def, override]
            client = ZmqFeedDataClientFactory.create(loop, name, config, msgbus, cache, clock)
            feeds.append(client)
            return client

    try:
        clients = node_clients(
            live, chain_cfg.instruments, os.environ, path=config_path, feed_factory=FeedFactory
        )
    except LiveConfigError as exc:
        print(f"tapereader live: {exc}", file=sys.stderr)
        return 2
    for line in mainnet_warnings(live.venues):
        print(f"tapereader live: {line}", file=sys.stderr, flush=True)
    chain_cfg = msgspec.structs.replace(
        chain_cfg,
        journal=msgspec.structs.replace(
            chain_cfg.journal, store=live.store, flush_every_ms=live.journal_flush_ms
        ),
    )
    if "://" not in live.store:
        Path(live.store).parent.mkdir(parents=True, exist_ok=True)
    recovered = previous_run(live.store) if resume else None
    real_venues = {v.name for v in live.venues if v.adapter and v.adapter.execution == "venue"}
    if recovered is not None and real_venues:
        # Restoring a position means sending a market order; on a real venue the position
        # is whatever the venue reports at reconciliation, never re-created from the journal.
        recovered = msgspec.structs.replace(
            recovered,
            positions={
                k: q
                for k, q in recovered.positions.items()
                if k.rsplit(".", 1)[-1] not in real_venues
            },
        )
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
        data_clients=clients.data,
        exec_clients=clients.exec,
        timeout_connection=live.connect_timeout_s,
        # A venue's own execution client reconciles its orders and positions over the network.
        timeout_reconciliation=live.connect_timeout_s if real_venues else 5.0,
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
                    kind="live" if real_venues else "paper",
                    config_hash=uuid.uuid5(uuid.NAMESPACE_OID, repr(chain_cfg)).hex[:16],
                    parameters={
                        "feed": live.feed_endpoint,
                        "run_id": run_id,
                        "recovered": recovered.describe() if recovered else "nothing",
                        "recovered_from": recovered.run_id if recovered else "",
                        **run_parameters(live, clients.env_vars),
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
        for name, factory in clients.data_factories.items():
            node.add_data_client_factory(name, factory)
        for name, factory in clients.exec_factories.items():
            node.add_exec_client_factory(name, factory)
        for actor in chain.actors:
            node.trader.add_actor(actor)
        for strategy in chain.strategies:
            node.trader.add_strategy(strategy)
        node.build()
        # Everything built so far lives as long as the node: collect once now, then keep it
        # out of later collections, which would otherwise walk all of it while ticks wait
        # (a full collection of the built node took 130 ms here).
        gc.collect()
        gc.freeze()
        sys.setswitchinterval(live.gil_switch_interval_ms / 1000)
        if chain.tap is not None:
            # Hops run from each tick's receipt by its data client; a feed that stamps its
            # send time adds the wire and publish-to-order latency.
            chain.tap.live = True
            chain.tap.send_stamps = deque(maxlen=100_000)
            for client in feeds:
                client.send_stamps = chain.tap.send_stamps
        # Replace the node's own SIGINT/SIGTERM handlers (which stop it at once): the
        # strategy must wind down while the node still processes its orders' events.
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        running = asyncio.create_task(node.run_async())
        feed = f", feed {live.feed_endpoint}" if FEED in clients.data else ""
        print(f"tapereader live: run {run_id}{feed}", flush=True)
        for v in live.venues:
            if v.adapter is not None:
                print(f"tapereader live: {v.name}: {describe(v)}", flush=True)
        watchdog = asyncio.create_task(connected_or_stop(node, stop))
        with contextlib.suppress(TimeoutError):  # stop_after_s elapsed: stop as on a signal
            await asyncio.wait_for(stop.wait(), live.stop_after_s or None)
        watchdog.cancel()
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

    async def connected_or_stop(node, stop: asyncio.Event) -> None:
        # A client that never connects (a venue out of reach, instruments that never load)
        # makes the node give up starting while it stays up: stop and report it, not idle.
        # Only the connections are judged: a start slowed by loading models is no failure.
        nonlocal status
        await asyncio.sleep(live.connect_timeout_s + 5.0)
        kernel = node.kernel
        if not (kernel.data_engine.check_connected() and kernel.exec_engine.check_connected()):
            status = "failed"
            print(
                "tapereader live: clients not connected within connect_timeout_s = "
                f"{live.connect_timeout_s}; stopping",
                file=sys.stderr,
                flush=True,
            )
            stop.set()

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
