"""Prometheus metrics: fed by the gate, served on their own port, no user ids or prompts in labels."""
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from core.calls import prometheus as metrics
from core.calls.gate import ChatRequest, ChatStream
from tests.browser import free_port
from tests.loopback_server import Script


def samples(text: str) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(text: str, name: str, **labels) -> float:
    return sum(v for (n, ls), v in samples(text).items() if n == name and labels.items() <= dict(ls).items())


def test_metrics_endpoint_counts_calls_and_leaks_nothing(provider, ctx, log, server):
    port = metrics.serve(free_port(), addr="127.0.0.1")
    url = f"http://127.0.0.1:{port}/metrics"
    before = urllib.request.urlopen(url).read().decode()
    list(ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "secret prompt text"}]),
                    ctx, log))
    server.push(Script(status=500))
    list(ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": "x"}]), ctx, log))
    after = urllib.request.urlopen(url).read().decode()
    ok = dict(provider="compatible", model="gpt-4o-mini", page="chat", status="ok")
    assert value(after, "promptlab_requests_total", **ok) - value(before, "promptlab_requests_total", **ok) == 1
    err = {**ok, "status": "error"}
    assert value(after, "promptlab_requests_total", **err) - value(before, "promptlab_requests_total", **err) == 1
    assert value(after, "promptlab_errors_total", error_type="server_error") >= 1
    assert value(after, "promptlab_request_latency_seconds_count", page="chat") > \
        value(before, "promptlab_request_latency_seconds_count", page="chat")
    assert value(after, "promptlab_time_to_first_token_seconds_count") >= 1
    assert value(after, "promptlab_tokens_total", direction="output") > 0
    assert "secret prompt text" not in after and "tester" not in after
    labels = {k for (name, ls) in samples(after) for k, _ in ls if name.startswith("promptlab_")}
    assert labels <= {"provider", "model", "page", "status", "direction", "error_type", "from_model", "to_model",
                      "le"}
    assert metrics.serve(free_port()) == port  # one endpoint per process


def test_the_endpoint_listens_on_loopback_by_default_and_model_labels_are_bounded(monkeypatch):
    import inspect

    from core.base.config import load_settings
    from core.calls.log import CallRecord

    assert inspect.signature(metrics.serve).parameters["addr"].default == "127.0.0.1"
    assert load_settings(environ={}).metrics_addr == "127.0.0.1"
    assert load_settings(environ={"PROMPTLAB_METRICS_ADDR": "0.0.0.0"}).metrics_addr == "0.0.0.0"
    monkeypatch.setattr(metrics, "_unpriced_labels", set())
    typed = [f"made-up-model-{i}" for i in range(metrics.MAX_UNPRICED_LABELS + 40)]
    labels = {metrics.model_label(m, priced=False) for m in typed}
    assert len(labels) == metrics.MAX_UNPRICED_LABELS + 1 and "other" in labels
    assert metrics.model_label("gpt-4o-mini", priced=True) == "gpt-4o-mini"  # priced models always keep theirs
    assert metrics.model_label("<a href='https://x'>m</a>", priced=False) == "other"
    assert metrics.model_label("x" * 500, priced=True) == "other"
    for m in typed:  # the gate's own path: every typed id is counted, under a bounded set of labels
        metrics.observe(CallRecord(request_id=m, ts="t", page="chat", provider="compatible", model_requested=m,
                                   status="error"))
    seen = {ls for (name, ls) in samples(metrics_text()) if name == "promptlab_requests_total"}
    counted = {dict(ls).get("model") for ls in seen}
    assert not counted & set(typed[metrics.MAX_UNPRICED_LABELS:]) and "other" in counted


def metrics_text() -> str:
    from prometheus_client import generate_latest
    return generate_latest(metrics.REGISTRY).decode()
