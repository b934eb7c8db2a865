"""Market data and execution for a live node: the ZeroMQ tick feed or a venue's adapter.

A ``[[live.venues]]`` table without an ``adapter`` sub-table takes its ticks from the ZeroMQ
feed, as before. With ``[live.venues.adapter]`` (``kind = "binance"`` or ``"bybit"``) the
venue's market data comes through NautilusTrader's own adapter, and orders go to the sandbox
(``execution = "paper"``, the default) or to the venue's execution client
(``execution = "venue"``). Testnet is the default; mainnet needs ``testnet = false``.

Keys come from environment variables only. A config may name the variables
(``api_key_env``) but never hold a key: :func:`refuse_secrets` rejects a file with a
key-like field, and nothing here puts a key anywhere but the adapter's client config, which
lives in memory for the node's lifetime (never in events, logs or files).

The sandbox looks up its venue's instruments in the cache when it connects, but a node
connects its clients together, and an adapter's data client fills the cache only once its
instrument provider has fetched the definitions. :class:`PaperExecutionClient` therefore
connects only when every instrument it trades is in the cache; see docs/VENUES.md.
"""

import asyncio
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec


class LiveConfigError(ValueError):
    """A live configuration that cannot be used; the message names the file and key."""


_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class BinanceAdapter(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="binance",
):
    """Binance through ``nautilus_trader.adapters.binance`` (venue ``BINANCE``)."""

    account_type: Literal["SPOT", "MARGIN", "USDT_FUTURES", "COIN_FUTURES"] = "USDT_FUTURES"
    testnet: bool = True
    execution: Literal["paper", "venue"] = "paper"
    api_key_env: str | None = None  # None: NautilusTrader's name for the account and network
    api_secret_env: str | None = None
    # RSA keys are refused by the adapter's execution client, so they are not offered.
    key_type: Literal["HMAC", "ED25519"] = "HMAC"
    use_agg_trade_ticks: bool = False

    venue_id = "BINANCE"

    @property
    def futures(self) -> bool:
        return self.account_type in ("USDT_FUTURES", "COIN_FUTURES")

    def default_env(self) -> tuple[str, str]:
        """The variables NautilusTrader's own Binance factory reads for this account."""
        if not self.testnet:
            return "BINANCE_API_KEY", "BINANCE_API_SECRET"
        if self.futures:
            return "BINANCE_FUTURES_TESTNET_API_KEY", "BINANCE_FUTURES_TESTNET_API_SECRET"
        return "BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET"

    def check_instrument(self, instrument: str) -> str | None:
        """Why ``instrument`` cannot be traded on this account, or None."""
        symbol = instrument.rsplit(".", 1)[0]
        if self.futures:
            # Perpetuals are SYMBOL-PERP; delivery futures carry their expiry (_YYMMDD).
            if not (symbol.endswith("-PERP") or re.search(r"_\d{6}$", symbol)):
                return (
                    f"{self.account_type} instruments look like BTCUSDT-PERP.BINANCE "
                    "(or BTCUSDT_YYMMDD.BINANCE for a delivery future)"
                )
        elif "-" in symbol:
            return f"{self.account_type} instruments look like BTCUSDT.BINANCE (no suffix)"
        return None


class BybitAdapter(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
    tag="bybit",
):
    """Bybit through ``nautilus_trader.adapters.bybit`` (venue ``BYBIT``)."""

    product_types: list[Literal["SPOT", "LINEAR", "INVERSE", "OPTION"]] = msgspec.field(
        default_factory=lambda: ["LINEAR"]
    )
    testnet: bool = True
    execution: Literal["paper", "venue"] = "paper"
    api_key_env: str | None = None
    api_secret_env: str | None = None

    venue_id = "BYBIT"

    def default_env(self) -> tuple[str, str]:
        """The variables NautilusTrader's Bybit client reads for this network."""
        if self.testnet:
            return "BYBIT_TESTNET_API_KEY", "BYBIT_TESTNET_API_SECRET"
        return "BYBIT_API_KEY", "BYBIT_API_SECRET"

    def check_instrument(self, instrument: str) -> str | None:
        """Why ``instrument`` cannot be traded with these product types, or None."""
        symbol = instrument.rsplit(".", 1)[0]
        product = symbol.rsplit("-", 1)[-1] if "-" in symbol else ""
        if product not in ("SPOT", "LINEAR", "INVERSE", "OPTION"):
            return "Bybit instruments carry their product type: BTCUSDT-LINEAR.BYBIT"
        if product not in self.product_types:
            return f"product type {product} is not in product_types {self.product_types}"
        return None


Adapter = BinanceAdapter | BybitAdapter


def env_names(adapter: Adapter) -> tuple[str, str]:
    """The key and secret variable names this adapter reads (configured or default)."""
    key, secret = adapter.default_env()
    return adapter.api_key_env or key, adapter.api_secret_env or secret


# Field names that would hold a credential. ``*_env`` names a variable, which is allowed;
# ``key_type`` says which algorithm the key uses, not the key.
_SECRET_NAMES = {
    "key",
    "apikey",
    "api_key",
    "api_secret",
    "secret",
    "secret_key",
    "private_key",
    "token",
    "access_token",
    "auth_token",
    "password",
    "passphrase",
    "credentials",
}
_SECRET_SUFFIXES = ("_secret", "_token", "_password", "_passphrase", "_api_key", "_private_key")


def _is_secret_name(name: str) -> bool:
    n = name.lower().replace("-", "_")
    if n.endswith("_env"):
        return False
    return n in _SECRET_NAMES or n.endswith(_SECRET_SUFFIXES)


def refuse_secrets(raw: Any, path: str, where: str = "") -> None:
    """Raise :class:`LiveConfigError` naming the file and field when a TOML table holds a
    field that looks like a credential (its value is never repeated in the message)."""
    if isinstance(raw, Mapping):
        for name, value in raw.items():
            dotted = f"{where}.{name}" if where else str(name)
            if _is_secret_name(str(name)):
                raise LiveConfigError(
                    f"{path}: {dotted}: a config file must not hold keys or secrets; put the "
                    "value in an environment variable and name the variable with "
                    "api_key_env / api_secret_env"
                )
            refuse_secrets(value, path, dotted)
    elif isinstance(raw, list):
        for i, value in enumerate(raw):
            refuse_secrets(value, path, f"{where}[{i}]")


def check_venues(venues: Sequence[Any], instruments: Sequence[str], path: str) -> None:
    """Cross-field checks of ``[[live.venues]]`` that the structs cannot express."""
    for i, v in enumerate(venues):
        at = f"{path}: live.venues[{i}] ({v.name})"
        a = v.adapter
        if (a is None or a.execution == "paper") and not v.starting_balances:
            raise LiveConfigError(f"{at}: paper execution needs starting_balances")
        if a is None:
            continue
        if v.name != a.venue_id:
            raise LiveConfigError(
                f"{at}: adapter kind {a.__struct_config__.tag!r} serves venue "
                f"{a.venue_id!r}; name the venue {a.venue_id!r} (instruments as "
                f"SYMBOL.{a.venue_id})"
            )
        for name in ("api_key_env", "api_secret_env"):
            value = getattr(a, name)
            if value is not None and not _ENV_NAME.match(value):
                # Deliberately not echoing the value: it may be a pasted key.
                raise LiveConfigError(
                    f"{at}: adapter.{name} must be an environment variable name "
                    "(capitals, digits and _), not a key"
                )
        if isinstance(a, BybitAdapter) and not a.product_types:
            raise LiveConfigError(f"{at}: adapter.product_types must not be empty")
        for instrument in instruments:
            if instrument.rsplit(".", 1)[-1] == v.name:
                problem = a.check_instrument(instrument)
                if problem:
                    raise LiveConfigError(f"{path}: chain.instruments: {instrument}: {problem}")


def credentials(
    venue: str, adapter: Adapter, environ: Mapping[str, str], path: str
) -> tuple[str, str] | None:
    """The key and secret for the venue's own execution client, read from the environment.

    None for paper execution: public market data needs no key on either venue, and a key
    the node does not need should not be in its memory.
    """
    if adapter.execution != "venue":
        return None
    values = []
    for var in env_names(adapter):
        value = environ.get(var, "")
        if not value.strip():
            raise LiveConfigError(
                f"{path}: live.venues ({venue}): environment variable {var} is not set; "
                'execution = "venue" needs the API key and secret in the environment'
            )
        values.append(value.strip())
    return values[0], values[1]


def describe(venue: Any) -> str:
    """One line for RunStarted and the console: where data and orders go (no keys)."""
    a = venue.adapter
    if a is None:
        return "data=feed execution=paper"
    network = "testnet" if a.testnet else "MAINNET"
    kind = a.account_type if isinstance(a, BinanceAdapter) else "+".join(a.product_types)
    return f"data={a.venue_id.lower()}:{kind}:{network} execution={a.execution}"


def mainnet_warnings(venues: Sequence[Any]) -> list[str]:
    """Loud lines for mainnet venues: a real-money run must not pass unnoticed."""
    out = []
    for v in venues:
        a = v.adapter
        if a is None or a.testnet:
            continue
        if a.execution == "venue":
            out.append(
                f"WARNING: {v.name} on MAINNET with execution = venue: orders are REAL and "
                "trade real money"
            )
        else:
            out.append(
                f"WARNING: {v.name} market data from MAINNET; orders stay on the paper sandbox"
            )
    return out


@dataclass
class NodeClients:
    """The client configs and factories of a TradingNode, by client name."""

    data: dict[str, Any] = field(default_factory=dict)
    exec: dict[str, Any] = field(default_factory=dict)
    data_factories: dict[str, type] = field(default_factory=dict)
    exec_factories: dict[str, type] = field(default_factory=dict)
    env_vars: dict[str, tuple[str, str]] = field(default_factory=dict)  # venue -> names


FEED = "ZMQFEED"


def node_clients(
    live: Any,
    instruments: Sequence[str],
    environ: Mapping[str, str],
    *,
    path: str = "live config",
    feed_factory: type | None = None,
) -> NodeClients:
    """Data and execution clients for the node: the feed for venues without an adapter, the
    adapter's data client otherwise; the sandbox or the venue's execution client."""
    from decimal import Decimal

    from tapereader.ingest.zmq_feed import ZmqFeedDataClientConfig, ZmqFeedDataClientFactory

    out = NodeClients()
    by_venue: dict[str, list[str]] = {}
    for instrument in instruments:
        by_venue.setdefault(instrument.rsplit(".", 1)[-1], []).append(instrument)
    fed = [i for v in live.venues if v.adapter is None for i in by_venue.get(v.name, [])]
    if fed or all(v.adapter is None for v in live.venues):
        out.data[FEED] = ZmqFeedDataClientConfig(
            endpoint=live.feed_endpoint,
            instrument_ids=fed,
            instrument_files=tuple(live.instrument_files),
        )
        out.data_factories[FEED] = feed_factory or ZmqFeedDataClientFactory
    for v in live.venues:
        ids = by_venue.get(v.name, [])
        a = v.adapter
        keys = None
        if a is not None:
            keys = credentials(v.name, a, environ, path)
            if a.execution == "venue":
                out.env_vars[v.name] = env_names(a)
            data, data_factory = _adapter_data(a, ids)
            out.data[v.name] = data
            out.data_factories[v.name] = data_factory
        if a is None or a.execution == "paper":
            paper_config, _, paper_factory = paper_classes()
            out.exec[v.name] = paper_config(
                venue=v.name,
                starting_balances=list(v.starting_balances),
                base_currency=v.base_currency,
                oms_type=v.oms_type,
                account_type=v.account_type,
                default_leverage=Decimal(str(v.default_leverage)),
                instrument_ids=tuple(ids),
                instrument_wait_s=live.connect_timeout_s,
            )
            out.exec_factories[v.name] = paper_factory
        else:
            assert keys is not None
            out.exec[v.name], out.exec_factories[v.name] = _adapter_exec(a, ids, keys)
    return out


def _provider(ids: Sequence[str]):  # -> InstrumentProviderConfig
    from nautilus_trader.config import InstrumentProviderConfig
    from nautilus_trader.model.identifiers import InstrumentId

    # Only the traded instruments: a whole exchange's definitions take long to fetch and
    # the node would wait for them before the sandbox may connect.
    return InstrumentProviderConfig(
        load_all=False, load_ids=frozenset(InstrumentId.from_str(i) for i in ids)
    )


def _binance_common(a: BinanceAdapter, ids: Sequence[str]) -> dict[str, Any]:
    from nautilus_trader.adapters.binance import BinanceAccountType, BinanceKeyType
    from nautilus_trader.adapters.binance.common.enums import BinanceEnvironment

    return dict(
        instrument_provider=_provider(ids),
        account_type=BinanceAccountType[a.account_type],
        key_type=BinanceKeyType[a.key_type],
        # Always explicit: the adapter's own default (None) means the live exchange.
        environment=BinanceEnvironment.TESTNET if a.testnet else BinanceEnvironment.LIVE,
    )


def _bybit_common(a: BybitAdapter, ids: Sequence[str]) -> dict[str, Any]:
    from nautilus_trader.adapters.bybit import BybitEnvironment, BybitProductType

    return dict(
        instrument_provider=_provider(ids),
        product_types=tuple(getattr(BybitProductType, p) for p in a.product_types),
        # Always explicit: the adapter's own default (None) means mainnet.
        environment=BybitEnvironment.TESTNET if a.testnet else BybitEnvironment.MAINNET,
    )


def _adapter_data(a: Adapter, ids: Sequence[str]) -> tuple[Any, type]:
    if isinstance(a, BinanceAdapter):
        from nautilus_trader.adapters.binance import (
            BinanceDataClientConfig,
            BinanceLiveDataClientFactory,
        )

        config = BinanceDataClientConfig(
            use_agg_trade_ticks=a.use_agg_trade_ticks, **_binance_common(a, ids)
        )
        return config, BinanceLiveDataClientFactory
    from nautilus_trader.adapters.bybit import BybitDataClientConfig, BybitLiveDataClientFactory

    return BybitDataClientConfig(**_bybit_common(a, ids)), BybitLiveDataClientFactory


def _adapter_exec(a: Adapter, ids: Sequence[str], keys: tuple[str, str]) -> tuple[Any, type]:
    key, secret = keys
    if isinstance(a, BinanceAdapter):
        from nautilus_trader.adapters.binance import (
            BinanceExecClientConfig,
            BinanceLiveExecClientFactory,
        )

        config = BinanceExecClientConfig(api_key=key, api_secret=secret, **_binance_common(a, ids))
        return config, BinanceLiveExecClientFactory
    from nautilus_trader.adapters.bybit import BybitExecClientConfig, BybitLiveExecClientFactory

    config = BybitExecClientConfig(api_key=key, api_secret=secret, **_bybit_common(a, ids))
    return config, BybitLiveExecClientFactory


# --- the paper venue ---------------------------------------------------------------------


@functools.cache
def paper_classes():  # -> (config, client, factory) classes of the paper venue
    """The paper venue's classes, built on first use: importing NautilusTrader at module
    level would slow down every ``tapereader`` command, which imports this module."""
    from nautilus_trader.adapters.sandbox.config import SandboxExecutionClientConfig
    from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
    from nautilus_trader.adapters.sandbox.factory import (
        SandboxLiveExecClientFactory as _SandboxFactory,
    )
    from nautilus_trader.model.identifiers import InstrumentId

    class PaperExecClientConfig(SandboxExecutionClientConfig, frozen=True, kw_only=True):
        """The sandbox, plus the instruments it must find in the cache before it connects."""

        instrument_ids: tuple[str, ...] = ()
        instrument_wait_s: float = 10.0

    class PaperExecutionClient(SandboxExecutionClient):
        """NautilusTrader's sandbox that connects once its instruments are in the cache.

        The sandbox copies its venue's instruments from the cache into its simulated
        exchange in ``connect``; an instrument that arrives later is added only if its
        definition is published on the bus after that, which nothing promises. Waiting here
        makes "instruments loaded, then sandbox connected" hold whatever fills the cache.
        With every instrument already there (the ZeroMQ feed adds them when it is built) it
        connects at once, exactly like the plain sandbox.
        """

        def __init__(self, loop, portfolio, msgbus, cache, clock, config):  # type: ignore[no-untyped-def]
            super().__init__(
                loop=loop,
                portfolio=portfolio,
                msgbus=msgbus,
                cache=cache,
                clock=clock,
                config=config,
            )
            self._wanted = [InstrumentId.from_str(i) for i in config.instrument_ids]
            self._wait_s = config.instrument_wait_s

        def missing(self) -> list[str]:
            """The instruments the sandbox trades that are not in the cache yet."""
            return [str(i) for i in self._wanted if self._cache.instrument(i) is None]

        def connect(self) -> None:
            if not self.missing():
                super().connect()
                return
            self._log.info(f"Waiting for instruments {self.missing()} before connecting")
            self.create_task(self._connect_when_loaded())

        async def _connect_when_loaded(self) -> None:
            deadline = self._loop.time() + self._wait_s
            while missing := self.missing():
                if self._loop.time() > deadline:
                    # Staying disconnected lets the node's connection timeout fail the start.
                    self._log.error(
                        f"Instruments {missing} not in the cache after {self._wait_s} s (did "
                        "the venue's data client load them?); the sandbox stays disconnected"
                    )
                    return
                await asyncio.sleep(0.05)
            SandboxExecutionClient.connect(self)

    class SandboxLiveExecClientFactory(_SandboxFactory):
        """Builds :class:`PaperExecutionClient`.

        Named like NautilusTrader's sandbox factory on purpose: its node builder hands the
        portfolio only to a factory of that class name.
        """

        @staticmethod
        def create(loop, name, config, portfolio, msgbus, cache, clock):  # type: ignore[no-untyped-def, override]
            return PaperExecutionClient(loop, portfolio, msgbus, cache, clock, config)

    return PaperExecClientConfig, PaperExecutionClient, SandboxLiveExecClientFactory
