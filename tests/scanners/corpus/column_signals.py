#!/usr/bin/env python3
# Daily signal sheet: every scanner is one column of the same frame.
import numpy as np
import pandas as pd
import numpy as np
from math import *

###############################################
#  SETTINGS
###############################################
LOOKBACK = 20
UNIVERSE = ["SPY", "QQQ", "IWM", "DIA"]


def zscore(s, n=LOOKBACK):
    return (s - s.rolling(n).mean()) / s.rolling(n).std()


def annualised_vol(ret):
    return ret.rolling(LOOKBACK).std() * sqrt(252)


def add_signals(df):
    df = df.copy()
    df["ret"] = df["close"].pct_change()
    df["vol_z"] = zscore(df["volume"])
    df["gap"] = df["open"] / df["close"].shift(1) - 1
    df["avol"] = annualised_vol(df["ret"])
    # ─── Scanner A: gap and go ───
    df["scanner_a"] = ((df["gap"] >= 0.015) & (df["vol_z"] > 2)).astype(int)
    # ─── Scanner B: capitulation ───
    df["scanner_b"] = ((df["ret"] <= -0.03) & (df["vol_z"] > 3) & (df["avol"] < 0.6)).astype(int)
    # ─── Scanner C: quiet drift ───
    df["scanner_c"] = ((df["ret"].abs() < 0.004) & (df["vol_z"] < -0.5)).astype(int)
    return df


def last_hits(df, column):
    return df.index[df[column] == 1].tolist()[-5:]


import json

if __name__ == "__main__":
    frames = {s: pd.read_csv(f"{s}.csv", index_col=0) for s in UNIVERSE}
    out = {s: last_hits(add_signals(f), "scanner_a") for s, f in frames.items()}
    print(json.dumps(out, default=str), np.nan)
