"""Realistic synthetic call records for demos and benchmarks: several real models with real prices, a daily
rhythm (busy afternoons, quiet nights and weekends), a few users, pages and tags, ~2 % errors, long-tailed latency.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from core.calls.interchange import insert_new
from core.calls.log import CallLog, CallRecord, endpoint_from_tags
from core.llm.pricing import TokenUsage, cost_usd, pricing_id_for

# model, provider, share of calls, output tokens/s, reasoning model
MODELS = [
    ("gpt-4o-mini", "openai", 0.36, 85.0, False),
    ("gpt-4.1-mini", "openai", 0.18, 75.0, False),
    ("gpt-4o", "openai", 0.13, 60.0, False),
    ("gpt-4.1", "openai", 0.08, 55.0, False),
    ("o4-mini", "openai", 0.07, 90.0, True),
    ("gpt-5-mini", "openai", 0.06, 70.0, True),
    ("local/SmolLM2-135M-Instruct", "local", 0.05, 45.0, False),
    ("llama3.1:8b", "compatible", 0.04, 35.0, False),  # a compatible server: unpriced, estimated tokens
    ("gpt-image-1", "openai", 0.02, 0.0, False),
    ("omni-moderation-latest", "openai", 0.01, 0.0, False),
]
PAGES = ["chat", "playground", "other"]
PAGE_P = [0.68, 0.27, 0.05]
USERS = ["ana", "ben", "chloe", "dev", "emma", "farid"]
USER_P = [0.30, 0.22, 0.17, 0.14, 0.10, 0.07]
TAGS = ["support-bot", "eval", "demo", "pricing-v2", "experiment-42"]
ERRORS = ["rate_limited", "server_error", "timeout", "bad_request", "stream_cut"]
ERROR_P = [0.40, 0.25, 0.20, 0.10, 0.05]
# Share of calls per hour of day (UTC): quiet at night, busiest mid-afternoon.
HOURLY = np.array([0.4, 0.3, 0.25, 0.25, 0.3, 0.5, 0.9, 1.5, 2.3, 2.9, 3.2, 3.3,
                   3.1, 3.3, 3.5, 3.4, 3.1, 2.6, 2.0, 1.6, 1.3, 1.0, 0.8, 0.6])


def generate_records(n: int, days: int = 30, seed: int = 0, end: datetime | None = None) -> list[CallRecord]:
    """n synthetic calls spread over the `days` days before `end` (default: now)."""
    rng = np.random.default_rng(seed)
    end = end or datetime.now(timezone.utc)
    start_day = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    day_weights = np.array([(0.55 if (start_day + timedelta(d)).weekday() >= 5 else 1.0) * (1 + 0.3 * d / days)
                            for d in range(days + 1)])
    day = rng.choice(days + 1, n, p=day_weights / day_weights.sum())
    hour = rng.choice(24, n, p=HOURLY / HOURLY.sum())
    offset_s = day * 86400 + hour * 3600 + rng.uniform(0, 3600, n)
    model_i = rng.choice(len(MODELS), n, p=[m[2] for m in MODELS])
    page_i = rng.choice(len(PAGES), n, p=PAGE_P)
    user_i = rng.choice(len(USERS), n, p=USER_P)
    status_roll = rng.uniform(0, 1, n)
    error_i = rng.choice(len(ERRORS), n, p=ERROR_P)
    input_tokens = np.maximum(5, rng.lognormal(np.log(600), 0.9, n)).astype(int)
    cached = np.where(rng.uniform(0, 1, n) < 0.3, (input_tokens * rng.uniform(0, 0.6, n)).astype(int), 0)
    output_tokens = np.maximum(1, rng.lognormal(np.log(220), 0.8, n)).astype(int)
    ttft = rng.lognormal(np.log(450), 0.55, n)
    speed_noise = rng.lognormal(0, 0.25, n)
    tag_roll = rng.uniform(0, 1, (n, len(TAGS)))
    records: list[CallRecord] = []
    for i in range(n):
        model, provider, _, speed, reasoning = MODELS[model_i[i]]
        page = PAGES[page_i[i]]
        ts = (start_day + timedelta(seconds=float(offset_s[i])))
        if ts > end:
            ts = end - timedelta(seconds=float(rng.uniform(0, 3600)))
        status = "error" if status_roll[i] < 0.02 else "cancelled" if status_roll[i] < 0.03 else "ok"
        error_type = ERRORS[error_i[i]] if status == "error" else None
        inp, out, cach = int(input_tokens[i]), int(output_tokens[i]), int(cached[i])
        images = None
        if model == "gpt-image-1":
            page, inp, cach, out, images = "images", inp // 20 + 10, 0, 1056, 1
        elif model == "omni-moderation-latest":
            page, out, cach = "moderation", 0, 0
        if status == "cancelled":
            out = max(1, out // 3)
        if error_type in ("rate_limited", "server_error", "bad_request", "timeout"):
            inp, cach, out = 0, 0, 0  # rejected before generation
        elif error_type == "stream_cut":
            out = max(1, out // 2)
        first_token = float(ttft[i]) * (3 if reasoning else 1)
        first: float | None = first_token
        if model == "gpt-image-1":
            latency = float(rng.lognormal(np.log(12_000), 0.3))
        elif model == "omni-moderation-latest":
            latency = float(rng.lognormal(np.log(180), 0.4))
        elif speed:
            latency = first_token + out / (speed * float(speed_noise[i])) * 1000
        else:
            latency = first_token
        if not speed:
            first = None  # not streamed: no time to first token
        if error_type == "timeout":
            latency, first = 30_000.0, None
        elif error_type in ("rate_limited", "server_error", "bad_request"):
            latency, first = float(rng.lognormal(np.log(300), 0.5)), None
        estimated = provider == "compatible"
        usage = TokenUsage(inp, out, cach)
        cost = 0.0 if model == "omni-moderation-latest" else cost_usd(usage, model, pricing_id_for(provider))
        records.append(CallRecord(
            request_id=f"gen_{seed}_{i}", ts=ts.isoformat(timespec="milliseconds"), page=page, provider=provider,
            model_requested=model, model=model, status=status, error_type=error_type, input_tokens=inp,
            cached_input_tokens=cach, output_tokens=out, reasoning_tokens=int(out * 0.5) if reasoning else 0,
            images=images, tokens_estimated=estimated, cost_usd=cost, latency_ms=round(latency, 1),
            ttft_ms=round(first, 1) if first is not None else None, user=USERS[user_i[i]],
            session=f"s_{seed}_{user_i[i]}_{int(day[i])}",
            tags=[t for t, roll in zip(TAGS, tag_roll[i], strict=True) if roll < 0.12],
            endpoint="moderations" if model == "omni-moderation-latest" else endpoint_from_tags([], page)))
    return records


def generate(log: CallLog, n: int, days: int = 30, seed: int = 0, batch: int = 20_000) -> int:
    """Generate and insert n calls; returns how many were new (the same seed twice adds nothing)."""
    added = 0
    for start in range(0, n, batch):
        records = generate_records(min(batch, n - start), days, seed=seed * 1_000_003 + start)
        for j, r in enumerate(records):
            r.request_id = f"gen_{seed}_{start + j}"
        added += insert_new(log, records)
    return added
