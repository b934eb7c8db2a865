"""The backtest configuration: ``[backtest]`` (venues, data, outputs) and ``[chain]``.

Loaded from TOML and validated whole before anything runs; an error names the file, the
key and the problem.
"""

import datetime as dt
import hashlib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from tapereader.actors.chain import ChainConfig, ChainConfigError, chain_config
from tapereader.core.tomlfile import read_tables

_Prob = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]


class BacktestConfigError(ValueError):
    """A backtest configuration that cannot be used; the message names the file and key."""


class VenueTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulated venue: account, book, fill model, fees and latency."""

    name: str
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    account_type: Literal["MARGIN", "CASH"] = "MARGIN"
    base_currency: str | None = None
    starting_balances: list[str]  # "100000 USD"
    default_leverage: Annotated[float, msgspec.Meta(gt=0.0)] = 1.0
    book_type: Literal["L1_MBP", "L2_MBP"] = "L1_MBP"
    fee_model: Literal["maker_taker", "fixed"] = "maker_taker"
    fixed_commission: str | None = None  # "2.50 USD" per order, with fee_model = "fixed"
    prob_fill_on_limit: _Prob = 1.0
    prob_slippage: _Prob = 0.0
    random_seed: int = 42
    latency_ms: Annotated[float, msgspec.Meta(ge=0.0)] = 0.0

    def __post_init__(self) -> None:
        if not self.starting_balances:
            raise ValueError("starting_balances: at least one balance is needed")
        if self.fee_model == "fixed" and not self.fixed_commission:
            raise ValueError("fee_model 'fixed' needs fixed_commission, e.g. '2.50 USD'")


class BacktestTable(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where the ticks come from, which span, and where events and reports go."""

    catalog: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    store: str = "var/events.db"
    report_dir: str = "var/reports"
    venues: list[VenueTable]
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "ERROR"
    hit_rate_horizon: Annotated[int, msgspec.Meta(ge=1)] = 50

    def __post_init__(self) -> None:
        for name, t in (("start", self.start), ("end", self.end)):
            if t is not None and t.tzinfo is None:
                raise ValueError(f"{name}: give a time zone (for example 2014-05-01T00:00:00Z)")
        if self.start and self.end and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        if not self.venues:
            raise ValueError("venues: at least one [[backtest.venues]] table is needed")


class BacktestConfig(msgspec.Struct, frozen=True, kw_only=True):
    backtest: BacktestTable
    chain: ChainConfig
    origin: str = ""
    digest: str = ""  # sha256 of the file's bytes: what RunStarted.config_hash records

    def venue_of(self, instrument_id: str) -> VenueTable:
        name = instrument_id.rsplit(".", 1)[-1]
        for v in self.backtest.venues:
            if v.name == name:
                return v
        raise BacktestConfigError(f"{self.origin}: no [[backtest.venues]] named {name!r}")


def load_backtest_config(path: str | Path) -> BacktestConfig:
    """Read and validate a backtest TOML file (tables ``[backtest]`` and ``[chain]``)."""
    path = Path(path)
    raw = read_tables(path, ["backtest", "chain"], BacktestConfigError, only=True)
    try:
        backtest = msgspec.convert(raw["backtest"], BacktestTable)
    except msgspec.ValidationError as exc:
        msg = str(exc).replace("$.", "backtest.")
        raise BacktestConfigError(f"{path}: [backtest] {msg}") from exc
    try:
        chain = chain_config(raw["chain"], str(path))
    except ChainConfigError as exc:
        raise BacktestConfigError(str(exc)) from exc
    cfg = BacktestConfig(
        backtest=backtest,
        chain=chain,
        origin=str(path),
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
    )
    for instrument in chain.instruments:
        cfg.venue_of(instrument)
    return cfg
