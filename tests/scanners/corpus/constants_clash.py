# -*- coding: utf-8 -*-
"""Intraday scanners written as module constants, two of them reusing names."""
from __future__ import annotations

import numpy as np
import pandas as pd

# ===================== shared settings =====================
SESSION_OPEN = "09:30"
MIN_DOLLAR_VOLUME = 2_000_000
watchlist: list[str] = []


def dollar_volume(df):
    return (df["close"] * df["volume"]).rolling(20).mean()


def remember(symbol):
    watchlist.append(symbol)


# ===================== Scanner: opening range =====================
THRESHOLD = 0.012
RANGE_MINUTES = 30


def opening_range_scanner(df, symbol="?"):
    first = df.iloc[:RANGE_MINUTES]
    hi, lo = first["high"].max(), first["low"].min()
    breakout = df["close"] > hi * (1 + THRESHOLD)
    liquid = dollar_volume(df) >= MIN_DOLLAR_VOLUME
    if bool((breakout & liquid).any()):
        remember(symbol)
    return breakout & liquid & (df["close"] > lo)


# ===================== Scanner: VWAP reclaim =====================
THRESHOLD = 0.004
VWAP_BAND = 0.002


def vwap_reclaim_scanner(df, symbol="?"):
    global THRESHOLD
    vwap = (df["close"] * df["volume"]).cumsum() / df["volume"].cumsum()
    dist = df["close"] / vwap - 1
    if dist.abs().max() > 0.05:
        THRESHOLD = 0.006
    below = dist.shift(1) < -VWAP_BAND
    reclaim = below & (dist > THRESHOLD)
    if bool(reclaim.any()):
        remember(symbol)
    return reclaim & (dollar_volume(df) >= MIN_DOLLAR_VOLUME)


# ===================== Scanner: closing drift =====================
DRIFT_MIN = 0.008
LAST_BARS = 45


def closing_drift_scanner(df, symbol="?"):
    tail = df.iloc[-LAST_BARS:]
    drift = np.log(tail["close"].iloc[-1] / tail["close"].iloc[0])
    out = pd.Series(False, index=df.index)
    out.iloc[-1] = bool(drift >= DRIFT_MIN)
    return out


# ===================== Main =====================
if __name__ == "__main__":
    frame = pd.read_parquet("minute_bars.parquet")
    for fn in (opening_range_scanner, vwap_reclaim_scanner, closing_drift_scanner):
        print(fn.__name__, int(fn(frame, "SPY").sum()))
    print(sorted(set(watchlist)))
