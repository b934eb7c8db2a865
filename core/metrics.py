"""Prometheus metrics over HTTP, in the text exposition format, without a client library.

A :class:`MetricsServer` answers ``GET /metrics`` from a daemon thread by calling its
``collect`` function, which returns :class:`Sample` values read from the running chain
(counters, gauges, and latency quantiles computed from the per-hop samples). Scrapes
read plain Python numbers and copy sample arrays; they never block the node's loop.
"""

import http.server
import math
import threading
from collections.abc import Callable, Iterable, Mapping

import msgspec
import numpy as np

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.9, 0.99)


class Sample(msgspec.Struct, frozen=True):
    """One line of the exposition: ``name{labels} value``, with its family's type and help."""

    name: str
    value: float
    kind: str = "gauge"  # "counter", "gauge" or "summary"
    help: str = ""
    labels: dict[str, str] = {}


def latency_samples(name: str, hops: Mapping[str, np.ndarray], help: str) -> list[Sample]:
    """A summary per hop: quantiles (seconds), ``_count`` and ``_sum``."""
    out = []
    for hop, ns in hops.items():
        if len(ns) == 0:
            continue
        seconds = np.asarray(ns, dtype=np.float64) / 1e9
        for q, v in zip(QUANTILES, np.quantile(seconds, QUANTILES), strict=True):
            out.append(Sample(name, float(v), "summary", help, {"hop": hop, "quantile": str(q)}))
        out.append(Sample(f"{name}_count", float(len(seconds)), "summary", help, {"hop": hop}))
        out.append(Sample(f"{name}_sum", float(seconds.sum()), "summary", help, {"hop": hop}))
    return out


def render(samples: Iterable[Sample]) -> str:
    """The text exposition of ``samples`` (families in first-seen order, one header each)."""
    lines: list[str] = []
    seen: set[str] = set()
    for s in samples:
        family = (
            s.name.removesuffix("_count").removesuffix("_sum") if s.kind == "summary" else s.name
        )
        if family not in seen:
            seen.add(family)
            lines.append(f"# HELP {family} {_escape_help(s.help)}")
            lines.append(f"# TYPE {family} {s.kind}")
        labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in s.labels.items())
        lines.append(
            f"{s.name}{{{labels}}} {_number(s.value)}" if labels else f"{s.name} {_number(s.value)}"
        )
    return "\n".join(lines) + "\n"


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _escape_label(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n")


class MetricsServer:
    """Serves ``collect()`` on ``http://host:port/metrics`` until :meth:`close`."""

    def __init__(self, collect: Callable[[], list[Sample]], port: int, host: str = "127.0.0.1"):
        handler = _handler(collect)
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="tapereader-metrics", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def _handler(collect: Callable[[], list[Sample]]) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            try:
                body = render(collect()).encode()
            except Exception as exc:  # a broken collector is a 500, never a dead server
                self.send_error(500, f"collecting metrics failed: {exc}")
                return
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes every few seconds would flood the node's output

    return Handler
