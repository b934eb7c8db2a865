"""The Prometheus exposition and its HTTP server."""

import urllib.error
import urllib.request

import numpy as np
import pytest

from tapereader.core.metrics import CONTENT_TYPE, MetricsServer, Sample, latency_samples, render


def test_render_writes_one_header_per_family_and_escapes_labels() -> None:
    text = render(
        [
            Sample("x_total", 3.0, "counter", "things", {"verdict": "approved"}),
            Sample("x_total", 1.0, "counter", "things", {"verdict": 'a "b"\\n'}),
            Sample("g", float("nan"), help="line1\nline2"),
        ]
    )
    assert text.count("# TYPE x_total counter") == 1
    assert 'x_total{verdict="approved"} 3.0' in text
    assert 'x_total{verdict="a \\"b\\"\\\\n"} 1.0' in text
    assert "# HELP g line1\\nline2" in text and "g NaN" in text


def test_latency_summaries_are_in_seconds_per_hop() -> None:
    ns = np.array([1_000, 2_000, 3_000, 4_000, 100_000], dtype=np.int64)
    text = render(latency_samples("lat_seconds", {"signal": ns, "empty": ns[:0]}, "h"))
    assert text.count("# TYPE lat_seconds summary") == 1
    assert 'lat_seconds{hop="signal",quantile="0.5"} 3e-06' in text
    assert 'lat_seconds_count{hop="signal"} 5.0' in text
    assert 'hop="empty"' not in text


def test_the_server_serves_metrics_refuses_other_paths_and_survives_a_broken_collector() -> None:
    calls = {"n": 0}

    def collect() -> list[Sample]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("collector broke")
        return [Sample("up", 1.0)]

    server = MetricsServer(collect, port=0)
    try:
        with urllib.request.urlopen(server.url, timeout=5) as r:
            assert r.headers["Content-Type"] == CONTENT_TYPE
            assert r.read().decode() == "# HELP up \n# TYPE up gauge\nup 1.0\n"
        with pytest.raises(urllib.error.HTTPError, match="500"):
            urllib.request.urlopen(server.url, timeout=5)
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url.replace("/metrics", "/other"), timeout=5)
        with urllib.request.urlopen(server.url, timeout=5) as r:  # still serving
            assert r.status == 200
    finally:
        server.close()
