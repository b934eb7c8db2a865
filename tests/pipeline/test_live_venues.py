"""Binance and Bybit through NautilusTrader's adapters: configs, keys, and the sandbox order.

Nothing here opens a network connection: the node is built (which constructs the adapters'
HTTP and WebSocket clients without connecting them) but never started against a venue.
"""

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from tapereader.core import events as ev
from tapereader.core.store import EventStore
from tapereader.live import LiveConfigError, load_live_config
from tapereader.live_venues import (
    FEED,
    BinanceAdapter,
    BybitAdapter,
    mainnet_warnings,
    node_clients,
    paper_classes,
)

from ..conftest import ROOT

BINANCE = ROOT / "config" / "live_binance_testnet.toml"
BYBIT = ROOT / "config" / "live_bybit_testnet.toml"
# Long enough that an adapter's masked form (first and last four characters) is not the key.
KEY = "tEsTkEyVaLuE0123456789abcdefGHIJ"
SECRET = "sEcReTvAlUe9876543210zyxwvuTSRQ"


def _with_adapter(path: Path, **changes):  # -> (LiveTable, ChainConfig)
    live, chain = load_live_config(path)
    v = live.venues[0]
    adapter = msgspec.structs.replace(v.adapter, **changes)
    return msgspec.structs.replace(
        live, venues=[msgspec.structs.replace(v, adapter=adapter)]
    ), chain


def _rewrite(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    text = source.read_text()
    assert old in text, old
    out = tmp_path / source.name
    out.write_text(text.replace(old, new, 1))
    return out


# --- the example configs ------------------------------------------------------------------


def test_the_binance_example_is_testnet_futures_data_with_paper_execution() -> None:
    from nautilus_trader.adapters.binance import BinanceAccountType, BinanceDataClientConfig
    from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment
    from nautilus_trader.model.identifiers import InstrumentId

    live, chain = load_live_config(BINANCE)
    assert chain.instruments == ["BTCUSDT-PERP.BINANCE"]
    (venue,) = live.venues
    assert venue.name == "BINANCE" and isinstance(venue.adapter, BinanceAdapter)
    clients = node_clients(live, chain.instruments, {}, path=str(BINANCE))
    assert set(clients.data) == {"BINANCE"}  # no ZeroMQ feed when every venue has an adapter
    data = clients.data["BINANCE"]
    assert isinstance(data, BinanceDataClientConfig)
    assert data.environment == BinanceEnvironment.TESTNET
    assert data.account_type == BinanceAccountType.USDT_FUTURES
    assert data.api_key is None and data.api_secret is None  # public market data
    assert data.instrument_provider.load_all is False
    assert data.instrument_provider.load_ids == frozenset(
        {InstrumentId.from_str("BTCUSDT-PERP.BINANCE")}
    )
    paper_config, _, paper_factory = paper_classes()
    sandbox = clients.exec["BINANCE"]
    assert isinstance(sandbox, paper_config)
    assert clients.exec_factories["BINANCE"] is paper_factory
    assert sandbox.venue == "BINANCE" and sandbox.starting_balances == ["10000 USDT"]
    assert sandbox.instrument_ids == ("BTCUSDT-PERP.BINANCE",)
    assert sandbox.instrument_wait_s == live.connect_timeout_s == 60.0
    assert clients.env_vars == {}


def test_the_bybit_example_is_testnet_linear_data_with_paper_execution() -> None:
    from nautilus_trader.adapters.bybit import (
        BybitDataClientConfig,
        BybitEnvironment,
        BybitProductType,
    )
    from nautilus_trader.model.identifiers import InstrumentId

    live, chain = load_live_config(BYBIT)
    assert chain.instruments == ["BTCUSDT-LINEAR.BYBIT"]
    (venue,) = live.venues
    assert venue.name == "BYBIT" and isinstance(venue.adapter, BybitAdapter)
    clients = node_clients(live, chain.instruments, {}, path=str(BYBIT))
    data = clients.data["BYBIT"]
    assert isinstance(data, BybitDataClientConfig)
    assert data.environment == BybitEnvironment.TESTNET
    assert data.product_types == (BybitProductType.LINEAR,)
    assert data.api_key is None and data.api_secret is None
    assert data.instrument_provider.load_ids == frozenset(
        {InstrumentId.from_str("BTCUSDT-LINEAR.BYBIT")}
    )
    assert isinstance(clients.exec["BYBIT"], paper_classes()[0])
    assert clients.exec["BYBIT"].instrument_ids == ("BTCUSDT-LINEAR.BYBIT",)


def test_the_paper_config_keeps_the_zeromq_feed_and_the_sandbox() -> None:
    live, chain = load_live_config(ROOT / "config" / "live_paper.toml")
    clients = node_clients(live, chain.instruments, {})
    assert set(clients.data) == {FEED}
    assert clients.data[FEED].instrument_ids == ["EUR/USD.OANDA"]
    assert clients.exec["OANDA"].instrument_ids == ("EUR/USD.OANDA",)


def test_feed_and_adapter_venues_side_by_side(tmp_path: Path) -> None:
    config = _rewrite(
        tmp_path,
        BINANCE,
        'instruments = ["BTCUSDT-PERP.BINANCE"]',
        'instruments = ["BTCUSDT-PERP.BINANCE", "EUR/USD.OANDA"]',
    )
    config.write_text(
        config.read_text().replace(
            "[[live.venues]]\n",
            '[[live.venues]]\nname = "OANDA"\nstarting_balances = ["100000 USD"]\n\n'
            "[[live.venues]]\n",
            1,
        )
    )
    live, chain = load_live_config(config)
    clients = node_clients(live, chain.instruments, {})
    assert clients.data[FEED].instrument_ids == ["EUR/USD.OANDA"]  # Binance's comes from Binance
    assert set(clients.data) == {FEED, "BINANCE"}


def test_a_real_trading_node_builds_from_each_example() -> None:
    from nautilus_trader.config import LoggingConfig, TradingNodeConfig
    from nautilus_trader.live.node import TradingNode
    from nautilus_trader.model.identifiers import ClientId

    for path in (BINANCE, BYBIT):
        live, chain = load_live_config(path)
        clients = node_clients(live, chain.instruments, {})
        loop = asyncio.new_event_loop()
        node = TradingNode(
            TradingNodeConfig(
                logging=LoggingConfig(log_level="ERROR"),
                data_clients=clients.data,
                exec_clients=clients.exec,
            ),
            loop=loop,
        )
        for name, factory in clients.data_factories.items():
            node.add_data_client_factory(name, factory)
        for name, factory in clients.exec_factories.items():
            node.add_exec_client_factory(name, factory)
        node.build()
        venue = live.venues[0].name
        assert node.kernel.data_engine.registered_clients == [ClientId(venue)]
        (client,) = node.kernel.exec_engine._clients.values()
        assert isinstance(client, paper_classes()[1]) and not client.is_connected
        node.dispose()


# --- instruments before the sandbox connects ------------------------------------------------


def _paper_client(wait_s: float):  # -> (loop, cache, client)
    from nautilus_trader.common.component import LiveClock, MessageBus
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.portfolio.portfolio import Portfolio
    from nautilus_trader.test_kit.stubs.component import TestComponentStubs

    paper_config, _, factory = paper_classes()
    loop = asyncio.new_event_loop()
    clock = LiveClock()
    msgbus = MessageBus(TraderId("TESTER-001"), clock)
    cache = TestComponentStubs.cache()
    portfolio = Portfolio(msgbus, cache, clock)
    config = paper_config(
        venue="BINANCE",
        starting_balances=["10000 USDT"],
        instrument_ids=("BTCUSDT-PERP.BINANCE",),
        instrument_wait_s=wait_s,
    )
    return loop, cache, factory.create(loop, "BINANCE", config, portfolio, msgbus, cache, clock)


def test_the_sandbox_connects_only_once_its_instruments_are_in_the_cache() -> None:
    from tapereader.ingest.instruments import default_registry

    loop, cache, client = _paper_client(wait_s=30.0)
    client.connect()  # as the node does, before the adapter's provider has loaded anything
    loop.run_until_complete(asyncio.sleep(0.2))
    assert not client.is_connected
    assert client.missing() == ["BTCUSDT-PERP.BINANCE"]
    instrument = default_registry().nautilus("BTCUSDT-PERP.BINANCE")
    cache.add_instrument(instrument)  # what the data engine does with the provider's output
    loop.run_until_complete(asyncio.sleep(0.2))
    assert client.is_connected
    assert instrument.id in client.exchange.instruments  # the simulated exchange trades it
    loop.close()


def test_the_sandbox_connects_at_once_when_the_instruments_are_there() -> None:
    from tapereader.ingest.instruments import default_registry

    loop, cache, client = _paper_client(wait_s=30.0)
    cache.add_instrument(default_registry().nautilus("BTCUSDT-PERP.BINANCE"))
    client.connect()
    assert client.is_connected  # synchronously, like NautilusTrader's own sandbox
    loop.close()


def test_the_sandbox_stays_disconnected_when_the_instruments_never_come() -> None:
    loop, _, client = _paper_client(wait_s=0.2)
    client.connect()
    loop.run_until_complete(asyncio.sleep(0.6))
    assert not client.is_connected  # the node's connection timeout then fails the start
    loop.close()


# --- keys --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('api_key = "abc123"', "live.venues[0].adapter.api_key"),
        ('api_secret = "abc123"', "live.venues[0].adapter.api_secret"),
        ('secret = "abc123"', "live.venues[0].adapter.secret"),
        ('token = "abc123"', "live.venues[0].adapter.token"),
        ('bybit_api_key = "abc123"', "live.venues[0].adapter.bybit_api_key"),
    ],
)
def test_a_key_in_the_toml_is_refused_naming_the_file_and_field(
    tmp_path: Path, line: str, field: str
) -> None:
    config = _rewrite(tmp_path, BINANCE, 'kind = "binance"', f'kind = "binance"\n{line}')
    with pytest.raises(LiveConfigError) as err:
        load_live_config(config)
    message = str(err.value)
    assert str(config) in message and field in message
    assert "abc123" not in message


def test_a_key_anywhere_in_the_file_is_refused(tmp_path: Path) -> None:
    config = _rewrite(tmp_path, BYBIT, "[live]\n", '[live]\npassword = "hunter2"\n')
    with pytest.raises(LiveConfigError, match=r"live\.password: a config file must not hold"):
        load_live_config(config)


def test_a_key_pasted_into_a_variable_name_is_refused_and_not_echoed(tmp_path: Path) -> None:
    config = _rewrite(
        tmp_path, BINANCE, "# api_key_env = ", f'api_key_env = "{KEY}"\n# api_key_env = '
    )
    with pytest.raises(LiveConfigError, match=r"adapter\.api_key_env must be an environment") as e:
        load_live_config(config)
    assert KEY not in str(e.value)


def test_variable_names_are_allowed(tmp_path: Path) -> None:
    config = _rewrite(
        tmp_path, BINANCE, "# api_key_env = ", 'api_key_env = "MY_BINANCE_KEY"\n# api_key_env = '
    )
    live, _ = load_live_config(config)
    assert live.venues[0].adapter.api_key_env == "MY_BINANCE_KEY"


def test_a_missing_variable_is_an_error_naming_it() -> None:
    live, chain = _with_adapter(BINANCE, execution="venue")
    with pytest.raises(LiveConfigError, match="BINANCE_FUTURES_TESTNET_API_KEY is not set"):
        node_clients(live, chain.instruments, {}, path="x.toml")
    live, chain = _with_adapter(BYBIT, execution="venue", api_secret_env="MY_BYBIT_SECRET")
    with pytest.raises(LiveConfigError, match="MY_BYBIT_SECRET is not set") as err:
        node_clients(live, chain.instruments, {"BYBIT_TESTNET_API_KEY": KEY}, path="x.toml")
    assert "x.toml" in str(err.value) and KEY not in str(err.value)


def test_paper_execution_needs_no_key_and_takes_none() -> None:
    live, chain = load_live_config(BINANCE)
    env = {"BINANCE_FUTURES_TESTNET_API_KEY": KEY, "BINANCE_FUTURES_TESTNET_API_SECRET": SECRET}
    clients = node_clients(live, chain.instruments, env)
    assert clients.data["BINANCE"].api_key is None and clients.env_vars == {}


def test_venue_execution_reads_the_keys_from_the_named_variables() -> None:
    from nautilus_trader.adapters.binance import BinanceExecClientConfig
    from nautilus_trader.adapters.bybit import BybitEnvironment, BybitExecClientConfig

    live, chain = _with_adapter(
        BINANCE, execution="venue", api_key_env="K_VAR", api_secret_env="S_VAR"
    )
    clients = node_clients(live, chain.instruments, {"K_VAR": KEY, "S_VAR": SECRET})
    exec_config = clients.exec["BINANCE"]
    assert isinstance(exec_config, BinanceExecClientConfig)
    assert (exec_config.api_key, exec_config.api_secret) == (KEY, SECRET)
    assert clients.data["BINANCE"].api_key is None  # the data client stays public
    assert clients.env_vars == {"BINANCE": ("K_VAR", "S_VAR")}

    live, chain = _with_adapter(BYBIT, execution="venue")
    env = {"BYBIT_TESTNET_API_KEY": KEY, "BYBIT_TESTNET_API_SECRET": SECRET}
    exec_config = node_clients(live, chain.instruments, env).exec["BYBIT"]
    assert isinstance(exec_config, BybitExecClientConfig)
    assert exec_config.environment == BybitEnvironment.TESTNET
    assert exec_config.api_key == KEY


# --- mainnet --------------------------------------------------------------------------------


def test_testnet_is_the_default_and_mainnet_needs_testnet_false(tmp_path: Path) -> None:
    from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment
    from nautilus_trader.adapters.bybit import BybitEnvironment

    config = _rewrite(tmp_path, BINANCE, "testnet = true", "")  # the key left out entirely
    live, chain = load_live_config(config)
    assert live.venues[0].adapter.testnet is True
    data = node_clients(live, chain.instruments, {}).data["BINANCE"]
    assert data.environment == BinanceEnvironment.TESTNET
    assert mainnet_warnings(live.venues) == []

    live, chain = _with_adapter(BINANCE, testnet=False)
    data = node_clients(live, chain.instruments, {}).data["BINANCE"]
    assert data.environment == BinanceEnvironment.LIVE
    assert any("MAINNET" in w for w in mainnet_warnings(live.venues))

    live, chain = _with_adapter(BYBIT, testnet=False, execution="venue")
    env = {"BYBIT_API_KEY": KEY, "BYBIT_API_SECRET": SECRET}
    clients = node_clients(live, chain.instruments, env)
    assert clients.exec["BYBIT"].environment == BybitEnvironment.MAINNET
    assert clients.env_vars == {"BYBIT": ("BYBIT_API_KEY", "BYBIT_API_SECRET")}
    (warning,) = mainnet_warnings(live.venues)
    assert "REAL" in warning and "BYBIT" in warning


# --- other validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "old", "new", "problem"),
    [
        (BINANCE, 'name = "BINANCE"', 'name = "BINANCEUS"', "serves venue 'BINANCE'"),
        (BINANCE, '"BTCUSDT-PERP.BINANCE"]', '"BTCUSDT.BINANCE"]', "look like BTCUSDT-PERP"),
        (BYBIT, '"BTCUSDT-LINEAR.BYBIT"]', '"BTCUSDT.BYBIT"]', "carry their product type"),
        (BYBIT, '"BTCUSDT-LINEAR.BYBIT"]', '"BTCUSDT-SPOT.BYBIT"]', "SPOT is not in"),
        (BYBIT, 'kind = "bybit"', 'kind = "kraken"', "adapter.kind"),
        (BYBIT, 'starting_balances = ["10000 USDT"]', "", "needs starting_balances"),
        (BYBIT, 'execution = "paper"', 'execution = "live"', "adapter.execution"),
    ],
)
def test_inconsistent_venues_are_refused_naming_the_problem(
    tmp_path: Path, path: Path, old: str, new: str, problem: str
) -> None:
    config = _rewrite(tmp_path, path, old, new)
    with pytest.raises(LiveConfigError) as err:
        load_live_config(config)
    assert str(config) in str(err.value) and problem in str(err.value)


# --- a run: RunStarted and the log -------------------------------------------------------

# The real run_node, with the node built from the real adapters' factories (keys and all),
# but run_async/stop_async replaced: starting would connect to the venue.
RUNNER = textwrap.dedent(
    """
    import sys
    import msgspec
    import nautilus_trader.live.node as node

    async def _nothing(self):
        return None

    node.TradingNode.run_async = _nothing
    node.TradingNode.stop_async = _nothing

    import tapereader.live
    from tapereader.core.recovery import Recovered
    from tapereader.live import load_live_config, run_node

    path, store, network, execution = sys.argv[1:5]
    never_connects = sys.argv[5:] == ["never-connects"]
    live, chain = load_live_config(path)
    # A crashed earlier run that held a position in the instrument.
    held = Recovered(
        run_id="earlier", completed=False, events=3, positions={chain.instruments[0]: 0.5},
        avg_px={}, realized_pnl=0.0, stances={}, kill_switch_tripped=False, last_signal={},
        last_ts_event=0,
    )
    tapereader.live.previous_run = lambda store: held
    v = live.venues[0]
    adapter = msgspec.structs.replace(
        v.adapter, execution=execution, testnet=network == "testnet"
    )
    live = msgspec.structs.replace(
        live, store=store, metrics_port=0, stop_after_s=0.2, settle_timeout_s=0.5,
        log_level="DEBUG", venues=[msgspec.structs.replace(v, adapter=adapter)],
    )
    if never_connects:  # no stop_after_s: only the connection watchdog can end the run
        live = msgspec.structs.replace(live, stop_after_s=0.0, connect_timeout_s=0.5)
    sys.exit(run_node(live, chain, run_id="keys-test", resume=True, config_path=path))
    """
)


def _run(
    tmp_path: Path, path: Path, network: str, execution: str, env: dict[str, str], *extra: str
):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    args = [str(path), str(tmp_path / "events.db"), network, execution, *extra]
    return subprocess.run(
        [sys.executable, str(runner), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("path", "network", "key_var", "secret_var"),
    [
        (
            BINANCE,
            "testnet",
            "BINANCE_FUTURES_TESTNET_API_KEY",
            "BINANCE_FUTURES_TESTNET_API_SECRET",
        ),
        (BYBIT, "mainnet", "BYBIT_API_KEY", "BYBIT_API_SECRET"),
    ],
)
def test_keys_reach_neither_the_events_nor_the_log(
    tmp_path: Path, path: Path, network: str, key_var: str, secret_var: str
) -> None:
    store = tmp_path / "events.db"
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "API_SECRET" not in k}
    env |= {key_var: KEY, secret_var: SECRET, "PYTHONUNBUFFERED": "1"}
    done = _run(tmp_path, path, network, "venue", env)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "ExecClient-" in out  # the venue's execution client was built and logged
    assert KEY not in out and SECRET not in out
    with EventStore.open(store) as s:
        events = [r.event for r in s.read()]
    (started,) = [e for e in events if isinstance(e, ev.RunStarted)]
    venue = path.stem.split("_")[1].upper()
    assert started.kind == "live"
    assert started.parameters[f"venue.{venue}.key_env"] == f"{key_var},{secret_var}"
    assert "execution=venue" in started.parameters[f"venue.{venue}"]
    encoded = b"".join(msgspec.json.encode(e) for e in events)
    assert KEY.encode() not in encoded and SECRET.encode() not in encoded
    assert KEY.encode() not in store.read_bytes() and SECRET.encode() not in store.read_bytes()
    if network == "mainnet":
        assert "MAINNET" in done.stderr and "REAL" in done.stderr
        assert "MAINNET" in started.parameters[f"venue.{venue}"]
    else:
        assert "MAINNET" not in out


def test_a_real_venue_never_restores_positions_by_orders(tmp_path: Path) -> None:
    """A restart takes over stances and the kill switch, but on a venue's own execution
    client the position is what the venue reports: restoring it would send a real order."""
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "API_SECRET" not in k}
    env |= {"BYBIT_TESTNET_API_KEY": KEY, "BYBIT_TESTNET_API_SECRET": SECRET}
    for execution, expected in (("paper", "BTCUSDT-LINEAR.BYBIT +0.5"), ("venue", "flat")):
        done = _run(tmp_path, BYBIT, "testnet", execution, env)
        assert done.returncode == 0, done.stdout + done.stderr
        with EventStore.open(tmp_path / "events.db") as s:
            started = [r.event for r in s.read() if isinstance(r.event, ev.RunStarted)][-1]
        assert f"positions {expected};" in started.parameters["recovered"], execution


def test_a_node_whose_clients_never_connect_stops_as_failed(tmp_path: Path) -> None:
    # run_async replaced: nothing connects, as when the venue is out of reach.
    done = _run(tmp_path, BINANCE, "testnet", "paper", dict(os.environ), "never-connects")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "clients not connected within connect_timeout_s = 0.5" in done.stderr
    with EventStore.open(tmp_path / "events.db") as s:
        (completed,) = [r.event for r in s.read() if isinstance(r.event, ev.RunCompleted)]
    assert completed.status == "failed"


def test_the_gil_switch_interval_is_checked_and_defaults_to_half_a_millisecond(
    tmp_path: Path,
) -> None:
    live, _ = load_live_config(BYBIT)
    assert live.gil_switch_interval_ms == 0.5
    config = _rewrite(tmp_path, BYBIT, "[live]\n", "[live]\ngil_switch_interval_ms = 0\n")
    with pytest.raises(LiveConfigError, match=r"live\.gil_switch_interval_ms") as err:
        load_live_config(config)
    assert str(config) in str(err.value)
