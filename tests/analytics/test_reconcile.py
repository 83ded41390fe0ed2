"""Reconciling the call log with the provider's bill, against the loopback server's Usage and Costs endpoints
(the SDK's admin paths and response shapes, pagination included)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from core.analytics import reconcile
from core.calls.log import CallLog, CallRecord

ROOT = Path(__file__).resolve().parents[2]
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
    run = lambda *a: subprocess.run([sys.executable, "-m", "core", "calls", "reconcile", "--since", "2026-11-01",  # noqa: E731
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
    missing = subprocess.run([sys.executable, "-m", "core", "calls", "reconcile", "--since", "2026-11-01", "--until",
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


def images_and_outside_spend(server, log: CallLog) -> None:
    """Nov 3 and 4: 3 gpt-4o-mini chat calls ($0.001 each) and 2 images ($0.04 each) a day through PromptLab; the
    bill also has gpt-4o and dall-e-3 used elsewhere and web-search tool calls that name no model."""
    server.admin_key = ADMIN
    for day in (3, 4):
        logged(log, day, "gpt-4o-mini", 3)
        logged(log, day, "gpt-image-1", 2, cost=0.04, page="images")
        server.usage_buckets.append({"start_time": epoch(day), "results": [
            {"model": "gpt-4o-mini-2024-07-18", "num_model_requests": 3, "input_tokens": 300, "output_tokens": 60},
            {"model": "gpt-4o-2024-08-06", "num_model_requests": 2, "input_tokens": 200, "output_tokens": 40}]})
        server.cost_buckets.append({"start_time": epoch(day), "results": [
            {"line_item": "gpt-4o-mini-2024-07-18, input", "amount": {"value": 0.002, "currency": "usd"}},
            {"line_item": "gpt-4o-mini-2024-07-18, output", "amount": {"value": 0.001, "currency": "usd"}},
            {"line_item": "gpt-image-1, output image", "amount": {"value": 0.08, "currency": "usd"}},
            {"line_item": "gpt-4o-2024-08-06, input", "amount": {"value": 0.01, "currency": "usd"}},
            {"line_item": "web search tool calls", "amount": {"value": 0.005, "currency": "usd"}},
            {"line_item": "dall-e-3, image", "amount": {"value": 0.04, "currency": "usd"}}]})


def test_coverage_counts_image_spend_and_dollars_are_never_counted_twice(server, log):
    """Issue 28 rows 6 and 7: coverage left image spend out (20 % where 81 % was tracked), and `--json` repeated the
    day's whole bill on every model row, so summing the rows overcounted."""
    images_and_outside_spend(server, log)
    result = reconcile.fetch(reconcile.admin_client(ADMIN, server.base_url), log.engine, date(2026, 11, 3),
                             date(2026, 11, 4))
    assert result.billed_cost_usd == pytest.approx(2 * 0.138)
    assert result.tracked_cost_usd == pytest.approx(2 * 0.083)  # the images are tracked spend
    assert result.coverage == pytest.approx(0.083 / 0.138)
    rows = result.json_rows()
    assert sum(r["billed_cost_usd"] for r in rows) == pytest.approx(result.billed_cost_usd)  # no double counting
    for day in ("2026-11-03", "2026-11-04"):
        mine = {r["model"]: r for r in rows if r["day"] == day}
        assert sum(r["billed_cost_usd"] for r in mine.values()) == pytest.approx(result.billed_cost_by_day[day])
        assert mine["gpt-4o-mini"]["billed_cost_usd"] == pytest.approx(0.003)
        assert mine["gpt-4o-mini"]["tracked_cost_usd"] == pytest.approx(0.003)
        image = mine["gpt-image-1"]
        assert (image["tracked_cost_usd"], image["billed_cost_usd"]) == (pytest.approx(0.08), pytest.approx(0.08))
        assert "did not bill" not in image["explanation"] and "image" in image["explanation"]
        assert (mine["gpt-4o"]["tracked_cost_usd"], mine["gpt-4o"]["billed_cost_usd"]) == (0.0, pytest.approx(0.01))
        assert (mine["dall-e-3"]["tracked_cost_usd"], mine["dall-e-3"]["billed_cost_usd"]) == (0.0,
                                                                                         pytest.approx(0.04))
        assert "outside PromptLab" in mine["dall-e-3"]["explanation"]
        assert mine["unattributed"]["billed_cost_usd"] == pytest.approx(0.005)
        assert "web search tool calls" in mine["unattributed"]["explanation"]
    assert [(d["day"], round(d["tracked_cost_usd"], 6), round(d["billed_cost_usd"], 6))
            for d in result.day_totals()] == [("2026-11-03", 0.083, 0.138), ("2026-11-04", 0.083, 0.138)]
    again = reconcile.saved(log.engine, date(2026, 11, 3), date(2026, 11, 4))
    assert again is not None and again.json_rows() == rows  # the page opens on the same numbers


def test_the_command_line_shows_billed_dollars_per_row_and_day_and_never_zero_for_unpriced(server, sqlite_url):
    log = CallLog(sqlite_url)
    images_and_outside_spend(server, log)
    logged(log, 3, "my-finetune", 2, cost=None)
    env = {**os.environ, "PROMPTLAB_DB_URL": sqlite_url, "OPENAI_ADMIN_KEY": ADMIN,
           "OPENAI_BASE_URL": server.base_url}
    args = [sys.executable, "-m", "core", "calls", "reconcile", "--since", "2026-11-03", "--until", "2026-11-04"]
    rows = json.loads(subprocess.run([*args, "--json"], cwd=ROOT, env=env, capture_output=True, text=True).stdout)
    assert sum(r["billed_cost_usd"] for r in rows) == pytest.approx(2 * 0.138)
    table = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    assert table.returncode == 0, table.stderr
    assert "2026-11-03 tracked $0.083 + 1 unpriced of billed $0.1380" in table.stdout
    assert "2026-11-04 tracked $0.083 of billed $0.1380" in table.stdout
    assert "tracked $0.166 + 1 unpriced of billed $0.2760: coverage 60.1%" in table.stdout


def test_voice_calls_made_from_chat_compare_in_dollars_not_as_completions(server, log):
    """Transcriptions and speech are logged on the chat page: by their endpoint they are not completions the
    provider "did not bill", and their spend counts as tracked."""
    server.admin_key = ADMIN
    for i, (model, endpoint) in enumerate([("whisper-1", "audio.transcriptions"), ("tts-1", "audio.speech")]):
        log.write(CallRecord(request_id=f"voice-{i}", ts="2026-11-03T10:00:00.000+00:00", page="chat",
                             provider="openai", model_requested=model, model=model, status="ok", cost_usd=0.01,
                             endpoint=endpoint))
    server.usage_buckets.append({"start_time": epoch(3), "results": []})
    server.cost_buckets.append({"start_time": epoch(3), "results": [
        {"line_item": "whisper-1, audio", "amount": {"value": 0.01, "currency": "usd"}},
        {"line_item": "tts-1, characters", "amount": {"value": 0.01, "currency": "usd"}}]})
    result = reconcile.fetch(reconcile.admin_client(ADMIN, server.base_url), log.engine, date(2026, 11, 3),
                             date(2026, 11, 3))
    rows = {r["model"]: r for r in result.json_rows()}
    assert set(rows) == {"whisper-1", "tts-1"}
    for row in rows.values():
        assert "audio" in row["explanation"] and "did not bill" not in row["explanation"]
        assert (row["tracked_cost_usd"], row["billed_cost_usd"]) == (pytest.approx(0.01), pytest.approx(0.01))
    assert result.tracked_cost_usd == pytest.approx(0.02)
