"""Reconciling the call log with the provider's bill, against the loopback server's Usage and Costs endpoints
(the SDK's admin paths and response shapes, pagination included)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from core import reconcile
from core.calllog import CallLog, CallRecord

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "sk-admin-PLANTED-secret-00000000"


def epoch(day: int) -> int:
    return int(datetime(2026, 11, day, tzinfo=timezone.utc).timestamp())


def logged(log: CallLog, day: int, model: str, n: int, cost: float | None = 0.001, page: str = "chat") -> None:
    for i in range(n):
        log.write(CallRecord(request_id=f"{model}-{day}-{i}-{page}", ts=f"2026-11-{day:02d}T10:00:00.000+00:00",
                             page=page, provider="openai", model_requested=model, model=model, status="ok",
                             input_tokens=100, output_tokens=20, cost_usd=cost))


def scenario(server, log: CallLog) -> None:
    """Nov 1–10: PromptLab made 3 gpt-4o-mini calls a day; on Nov 5 the bill has 5 (2 made elsewhere); on Nov 7 a
    model PromptLab could not price; model lists on page "other" that the bill never counts."""
    server.admin_key = ADMIN
    for day in range(1, 11):
        logged(log, day, "gpt-4o-mini", 3)
        billed = 5 if day == 5 else 3
        results = [{"model": "gpt-4o-mini-2024-07-18", "num_model_requests": billed, "input_tokens": 100 * billed,
                    "output_tokens": 20 * billed, "input_cached_tokens": 0}]
        if day == 7:
            logged(log, day, "my-finetune", 2, cost=None)
            results.append({"model": "my-finetune", "num_model_requests": 2, "input_tokens": 200,
                            "output_tokens": 40})
        server.usage_buckets.append({"start_time": epoch(day), "results": results})
        server.cost_buckets.append({"start_time": epoch(day), "results": [
            {"line_item": "gpt-4o-mini, input", "amount": {"value": 0.002 * billed / 3, "currency": "usd"}},
            {"line_item": "gpt-4o-mini, output", "amount": {"value": 0.001 * billed / 3, "currency": "usd"}}]})
        logged(log, day, "gpt-4o-mini", 1, page="other")  # a model list: not model work


def test_matching_days_outside_calls_unpriced_models_and_pagination(server, log):
    scenario(server, log)
    client = reconcile.admin_client(ADMIN, server.base_url)
    result = reconcile.fetch(client, log.engine, date(2026, 11, 1), date(2026, 11, 10))
    pages = [r for r in server.requests if r["path"] == "/v1/organization/usage/completions"]
    assert len(pages) == 1  # 10 daily buckets fit one page of 31 …
    small = reconcile.billed_usage(client, date(2026, 11, 1), date(2026, 11, 10))
    assert len(small) == 11  # … and every bucket arrives whatever the page size (see the paged test below)
    rows = {(r.day, r.model): r for r in result.rows}
    assert rows[("2026-11-01", "gpt-4o-mini")].explanation == "matches"
    assert rows[("2026-11-01", "gpt-4o-mini")].tracked_requests == 3  # the model list is not counted
    outside = rows[("2026-11-05", "gpt-4o-mini")]
    assert (outside.tracked_requests, outside.billed_requests) == (3, 5)
    assert outside.explanation.startswith("2 requests made outside PromptLab")
    unpriced = rows[("2026-11-07", "my-finetune")]
    assert unpriced.tracked_cost_usd is None and "missing from the price data" in unpriced.explanation
    assert result.billed_cost_by_day["2026-11-05"] == 0.005 and len(result.billed_cost_by_day) == 10
    assert 0 < result.coverage < 1
    assert reconcile.saved(log.engine, date(2026, 11, 1), date(2026, 11, 10)).rows == result.rows  # kept


def test_every_page_of_the_usage_api_is_read(server, log, monkeypatch):
    scenario(server, log)
    original = reconcile.openai.resources.admin.organization.usage.Usage.completions  # type: ignore[attr-defined]

    def small_pages(self, **kwargs):
        return original(self, **{**kwargs, "limit": 3})
    monkeypatch.setattr(reconcile.openai.resources.admin.organization.usage.Usage, "completions", small_pages)
    usage = reconcile.billed_usage(reconcile.admin_client(ADMIN, server.base_url), date(2026, 11, 1),
                                   date(2026, 11, 10))
    pages = [r for r in server.requests if r["path"] == "/v1/organization/usage/completions"]
    assert len(pages) == 4 and len({u.day for u in usage}) == 10


def test_the_command_line_prints_the_table_or_json_and_never_the_key(server, sqlite_url):
    log = CallLog(sqlite_url)
    scenario(server, log)
    env = {**os.environ, "PROMPTLAB_DB_URL": sqlite_url, "OPENAI_ADMIN_KEY": ADMIN,
           "OPENAI_BASE_URL": server.base_url}
    run = lambda *a: subprocess.run([sys.executable, "-m", "core.calllog", "reconcile", "--since", "2026-11-01",  # noqa: E731
                                     "--until", "2026-11-10", *a], cwd=ROOT, env=env, capture_output=True, text=True)
    table = run()
    assert table.returncode == 0 and "coverage" in table.stdout and "outside PromptLab" in table.stdout
    rows = json.loads(run("--json").stdout)
    assert set(rows[0]) >= {"day", "model", "tracked_requests", "billed_requests", "tracked_input_tokens",
                            "billed_input_tokens", "tracked_output_tokens", "billed_output_tokens",
                            "tracked_cost_usd", "billed_cost_usd"}
    assert ADMIN not in table.stdout + table.stderr
    server.admin_key = "sk-admin-other-0000000000"  # a wrong key: one sentence, exit 1, the key not echoed
    wrong = run()
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr and ADMIN not in wrong.stderr
    missing = subprocess.run([sys.executable, "-m", "core.calllog", "reconcile", "--since", "2026-11-01", "--until",
                              "2026-11-10"], cwd=ROOT, capture_output=True, text=True,
                             env={k: v for k, v in env.items() if k != "OPENAI_ADMIN_KEY"})
    assert missing.returncode == 1 and "OPENAI_ADMIN_KEY" in missing.stderr


def test_batch_and_service_tier_requests_are_explained(server, log):
    server.admin_key = ADMIN
    logged(log, 12, "gpt-5-mini", 2)
    server.usage_buckets.append({"start_time": epoch(12), "results": [
        {"model": "gpt-5-mini", "num_model_requests": 2, "input_tokens": 200, "output_tokens": 40},
        {"model": "gpt-5-mini", "batch": True, "num_model_requests": 10, "input_tokens": 1000, "output_tokens": 200},
        {"model": "gpt-5-mini", "service_tier": "flex", "num_model_requests": 3, "input_tokens": 300,
         "output_tokens": 60}]})
    server.cost_buckets.append({"start_time": epoch(12), "results": [
        {"line_item": "gpt-5-mini, input", "amount": {"value": 0.01, "currency": "usd"}}]})
    result = reconcile.fetch(reconcile.admin_client(ADMIN, server.base_url), log.engine, date(2026, 11, 12),
                             date(2026, 11, 12))
    (row,) = result.rows
    assert (row.tracked_requests, row.billed_requests) == (2, 15)
    assert "10 Batch API requests" in row.explanation and "3 requests on the flex tier" in row.explanation
    assert "3 requests made outside PromptLab" in row.explanation  # the flex ones were not PromptLab's either
