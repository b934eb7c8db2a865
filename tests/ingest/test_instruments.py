"""Built-in instrument definitions and user declarations in TOML."""

from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from tapereader.ingest.context import LoadContext
from tapereader.ingest.instruments import default_registry
from tapereader.ingest.pipeline import ingest

from .conftest import TARDIS_QUOTES, TARDIS_TRADES, make_ctx

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("instrument_id", "price_prec", "tick", "size_prec", "step", "maker", "taker"),
    [
        ("BTCUSDT-PERP.BINANCE", 2, "0.10", 3, "0.001", "0.0002", "0.0005"),
        ("ETHUSDT-PERP.BINANCE", 2, "0.01", 3, "0.001", "0.0002", "0.0005"),
        ("EUR/USD.FXCM", 5, "0.00001", 0, "1", "0", "0"),
        ("EUR/USD.OANDA", 5, "0.00001", 0, "1", "0", "0"),
        ("BTC-PERP.FTX", 0, "1", 4, "0.0001", "0.0002", "0.0007"),
    ],
)
def test_builtin_instruments(instrument_id, price_prec, tick, size_prec, step, maker, taker):
    inst = default_registry().nautilus(instrument_id)
    assert str(inst.id) == instrument_id
    assert (inst.price_precision, inst.size_precision) == (price_prec, size_prec)
    assert inst.price_increment.as_decimal() == Decimal(tick)
    assert inst.size_increment.as_decimal() == Decimal(step)
    assert (inst.maker_fee, inst.taker_fee) == (Decimal(maker), Decimal(taker))


def test_symbols_resolve_per_venue():
    reg = default_registry()
    assert reg.resolve("BINANCE", "btcusdt").id == "BTCUSDT-PERP.BINANCE"
    assert reg.resolve("FXCM", "eurusd").id == "EUR/USD.FXCM"
    assert reg.resolve("OANDA", "EUR/USD").id == "EUR/USD.OANDA"
    assert reg.resolve("BINANCE", "XYZUSDT") is None


def test_the_example_toml_declares_usable_instruments():
    reg = default_registry([ROOT / "config" / "instruments.toml"])
    sol = reg.resolve("BINANCE", "SOLUSDT")
    assert sol is not None
    inst = reg.nautilus(sol.id)
    assert inst.price_precision == 4 and inst.taker_fee == Decimal("0.0005")
    gbp = reg.nautilus(reg.resolve("OANDA", "gbpusd").id)
    assert gbp.price_precision == 5


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'price_increment = "0.001"',
            "price_increment 0.001 has more decimals than its precision 2",
        ),
        ('base = "NOTACOIN"', "unknown currency 'NOTACOIN'"),
        ('colour = "blue"', "unknown field `colour`"),
    ],
)
def test_bad_declarations_name_the_file_entry_and_problem(tmp_path: Path, body: str, message: str):
    base = {
        "id": '"ABCUSDT-PERP.BINANCE"',
        "kind": '"crypto_perpetual"',
        "raw_symbol": '"ABCUSDT"',
        "base": '"BTC"',
        "quote": '"USDT"',
        "price_precision": "2",
        "size_precision": "3",
        "price_increment": '"0.01"',
        "size_increment": '"0.001"',
    }
    key = body.split(" = ")[0]
    base[key] = body.split(" = ", 1)[1]
    path = tmp_path / "bad.toml"
    path.write_text("[[instrument]]\n" + "\n".join(f"{k} = {v}" for k, v in base.items()))
    with pytest.raises(ValueError) as err:
        default_registry([path])
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_changed_definition_keeps_the_catalogs_and_says_so(market_data: Path, tmp_path: Path):
    catalog = tmp_path / "cat"
    ingest([market_data / TARDIS_TRADES], catalog, make_ctx(), record_events=False)
    reg = default_registry()
    spec = reg.get("BTCUSDT-PERP.BINANCE")
    reg.add(msgspec.structs.replace(spec, taker_fee="0.0004"))
    ctx = LoadContext(reg)
    report = ingest([market_data / TARDIS_QUOTES], catalog, ctx, record_events=False)
    assert report.files[0].kinds[0].rows_written == 9_999
    assert any("instrument definition differs" in n for n in report.notes)
