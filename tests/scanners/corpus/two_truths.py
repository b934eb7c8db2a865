import asyncio
import json

import numpy as np
import pandas as pd


def momentum_scan(df, custom_params=None):
    defaults = {"rsi_min": 55, "vol_mult": 1.8, "lookback": 14}
    if custom_params:
        defaults.update(custom_params)
    change = df["close"].pct_change(defaults["lookback"])
    vol_ok = df["volume"] > defaults["vol_mult"] * df["volume"].rolling(20).mean()
    strength = 100 * change.rank(pct=True)
    return (strength >= defaults["rsi_min"]) & vol_ok & (df["close"] > MIN_PRICE)


def mean(xs):
    return sum(xs) / len(xs)


def pullback(df, depth=0.05, ema_span=21):
    ema = df["close"].ewm(span=ema_span).mean()
    near = (df["close"] / ema - 1).abs() <= depth
    trend = ema > ema.shift(5)
    return near & trend & (df["close"] > MIN_PRICE) & (np.mean(df["volume"]) > 0)


async def stream_alerts(symbols):
    import websockets
    async with websockets.connect(FEED["url"], extra_headers={"X-Key": FEED["token"]}) as ws:
        async def on_message(raw):
            tick = json.loads(raw)
            if tick["s"] in symbols and tick["p"] > ALERT_PRICE:
                print("alert", tick)
        async for raw in ws:
            await on_message(raw)


import os

FEED = {"url": "wss://stream.example-broker.test/ws", "token": "tok_8sd7f6g5h4j3k2l1zq"}
ALERT_PRICE = 250.0

if __name__ == "__main__":
    MIN_PRICE = float(os.environ.get("MIN_PRICE", "5"))
    custom_params = {"rsi_min": 60, "lookback": 14}
    bars = pd.read_csv("bars.csv", index_col=0)
    hits = momentum_scan(bars, custom_params)
    bars[hits].to_csv("momentum_hits.csv")
    print(pullback(bars).sum())
    asyncio.run(stream_alerts(["AAPL"]))
