"""Prometheus metrics of every model call, fed by the call gate; served on their own port when
PROMPTLAB_METRICS_PORT is set. Names follow the usual LLM-gateway conventions; labels never carry user ids or
prompt text (only provider, model, page, status, direction).
"""
from __future__ import annotations

import re
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from core.calls.log import CallRecord

REGISTRY = CollectorRegistry(auto_describe=True)
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
_TTFT_BUCKETS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5, 3, 6, 12, 30)

REQUESTS = Counter("promptlab_requests", "Model calls by outcome", ("provider", "model", "page", "status"),
                   registry=REGISTRY)
LATENCY = Histogram("promptlab_request_latency_seconds", "Whole-call latency", ("provider", "model", "page"),
                    buckets=_LATENCY_BUCKETS, registry=REGISTRY)
TTFT = Histogram("promptlab_time_to_first_token_seconds", "Time to the first streamed token", ("provider", "model"),
                 buckets=_TTFT_BUCKETS, registry=REGISTRY)
TOKENS = Counter("promptlab_tokens", "Tokens by direction", ("provider", "model", "direction"), registry=REGISTRY)
SPEND = Counter("promptlab_spend_usd", "Spend in USD (priced calls only)", ("provider", "model"), registry=REGISTRY)
CACHE_HITS = Counter("promptlab_cache_hits", "Replies served from the response cache", ("provider", "model"),
                     registry=REGISTRY)
FALLBACKS = Counter("promptlab_fallbacks", "Calls answered by a fallback model", ("provider", "from_model",
                                                                                  "to_model"), registry=REGISTRY)
ERRORS = Counter("promptlab_errors", "Failed calls by error type", ("provider", "model", "error_type"),
                 registry=REGISTRY)

_server_lock = threading.Lock()
_server_port: int | None = None

# Model ids are typed by users: a label per distinct string would let anyone grow the metrics without bound (and put
# arbitrary text on the page). Priced models (genai-prices knows them) keep their id; up to MAX_UNPRICED_LABELS other
# well-formed ids are kept (a compatible server's own models); the rest count as "other".
MAX_UNPRICED_LABELS = 25
_LABEL = re.compile(r"^[\w.:/@+-]{1,80}$")
_unpriced_labels: set[str] = set()
_labels_lock = threading.Lock()


def model_label(model: str | None, priced: bool) -> str:
    """The label value a model id is counted under (bounded: see above)."""
    if not model:
        return "unknown"
    if not _LABEL.match(model):
        return "other"
    if priced:
        return model
    with _labels_lock:
        if model in _unpriced_labels or len(_unpriced_labels) < MAX_UNPRICED_LABELS:
            _unpriced_labels.add(model)
            return model
    return "other"


def observe(record: CallRecord) -> None:
    """Count one finished call (the gate calls this for every CallRecord it writes)."""
    model = model_label(record.model or record.model_requested, record.cost_usd is not None)
    REQUESTS.labels(record.provider, model, record.page, record.status).inc()
    if record.latency_ms is not None:
        LATENCY.labels(record.provider, model, record.page).observe(record.latency_ms / 1000)
    if record.ttft_ms is not None:
        TTFT.labels(record.provider, model).observe(record.ttft_ms / 1000)
    if record.input_tokens:
        TOKENS.labels(record.provider, model, "input").inc(record.input_tokens)
    if record.output_tokens:
        TOKENS.labels(record.provider, model, "output").inc(record.output_tokens)
    if record.cost_usd:
        SPEND.labels(record.provider, model).inc(record.cost_usd)
    if record.error_type:
        ERRORS.labels(record.provider, model, record.error_type).inc()
    if record.cached:
        CACHE_HITS.labels(record.provider, model).inc()


def serve(port: int, addr: str = "127.0.0.1") -> int:
    """Start the /metrics endpoint once per process (later calls return the port it already has)."""
    global _server_port
    with _server_lock:
        if _server_port is None:
            start_http_server(port, addr=addr, registry=REGISTRY)
            _server_port = port
        return _server_port
