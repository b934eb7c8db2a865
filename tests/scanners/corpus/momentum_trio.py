"""Three momentum scanners kept in one file, the way a trader grows them."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import requests

# ─── Config ───
API_KEY = "pk_live_9f8e7d6c5b4a39281706"
BASE_URL = "https://api.example-market-data.test/v2"
START_DATE = "2024-01-02"
END_DATE = "2024-06-28"
MAX_WORKERS = 8


def fetch_bars(symbol, start=START_DATE, end=END_DATE):
    url = f"{BASE_URL}/bars/{symbol}?from={start}&to={end}&apiKey={API_KEY}"
    return pd.DataFrame(requests.get(url, timeout=10).json()["results"])


def load_universe(symbols):
    with ThreadPoolExecutor(max_workers=MAX_WORKERS) as pool:
        return dict(zip(symbols, pool.map(fetch_bars, symbols)))


# ==== Scanner 1: Volume breakout ====
P = {
    "price_min": 5.0,
    "vol_mult": 2.5,
    "lookback": 20,
}


def rel_volume(df):
    return df["volume"] / df["volume"].rolling(P["lookback"]).mean()


def scan_volume_breakout(df):
    rv = rel_volume(df)
    hits = (df["close"] >= P["price_min"]) & (rv >= P["vol_mult"])
    return df.index[hits.fillna(False)].tolist()


# ==== Scanner 2: A+ ====
P = {
    "price_min": 10.0,
    "atr_mult": 1.5,
    "slope3d_min": 0.02,
}


def rel_volume(df, window):
    return df["volume"] / df["volume"].rolling(window).mean()


async def trend_ok(df):
    return bool(np.polyfit(np.arange(3), df["close"].tail(3).to_numpy(), 1)[0] > 0)


def trend_ok(df):
    slope = (df["close"] - df["close"].shift(3)) / df["close"].shift(3) / 3
    return slope >= P["slope3d_min"]


def scan_a_plus(df):
    atr = (df["high"] - df["low"]).rolling(14).mean()
    rng = df["high"] - df["low"]
    hits = (df["close"] >= P["price_min"]) & (rng >= P["atr_mult"] * atr) & trend_ok(df)
    return df.index[hits.fillna(False)].tolist()


# ==== Scanner 3: Quiet squeeze ====
P = {
    "price_min": 2.0,
    "band_width_max": 0.04,
}


def scan_quiet_squeeze(df):
    mid = df["close"].rolling(20).mean()
    width = 4 * df["close"].rolling(20).std() / mid
    rv = rel_volume(df, 10)
    hits = (df["close"] >= P["price_min"]) & (width <= P["band_width_max"]) & (rv < 1)
    return df.index[hits.fillna(False)].tolist()


if __name__ == "__main__":
    SYMBOLS = ["AAPL", "MSFT", "NVDA"]
    t0 = time.time()
    data = load_universe(SYMBOLS)
    for sym, df in data.items():
        print(sym, scan_volume_breakout(df))
        print(sym, scan_a_plus(df))
        print(sym, scan_quiet_squeeze(df))
    print("took", time.time() - t0, os.getpid())
