"""Millions of synthetic calls written by the database itself (INSERT … SELECT over generate_series), with the
distributions of core/calls/synthetic.py: its models and their shares and prices, pages, users, tags (each 12 %),
~2 % errors of five kinds, ~1 % cancelled, log-normal tokens and latency, a daily rhythm. Python's generator makes
about 8,000 calls a second; this makes ten million in a few minutes, which is what a 10 M-call benchmark needs.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.calls.synthetic import ERROR_P, ERRORS, HOURLY, MODELS, PAGE_P, PAGES, TAGS, USER_P, USERS
from core.llm.pricing import TokenUsage, cost_usd, pricing_id_for


def _pick(u: str, values: list[str], weights: list[float]) -> str:
    """SQL: one of `values` by the uniform random column `u` and the weights."""
    total, acc, arms = sum(weights), 0.0, []
    for value, weight in zip(values[:-1], weights[:-1], strict=True):
        acc += float(weight) / float(total)
        arms.append(f"WHEN {u} < {acc!r} THEN {value}")
    return f"(CASE {' '.join(arms)} ELSE {values[-1]} END)"


def _quoted(values: list[str]) -> list[str]:
    return ["'" + v.replace("'", "''") + "'" for v in values]


def _unit_prices(model: str, provider: str) -> tuple[str, str, str]:
    """Per-token input, cached-input and output prices as SQL literals (NULL: unpriced)."""
    per = 1_000_000
    full = cost_usd(TokenUsage(per, 0, 0), model, pricing_id_for(provider))
    if full is None:
        return "NULL", "NULL", "NULL"
    cached = cost_usd(TokenUsage(per, 0, per), model, pricing_id_for(provider))
    out = cost_usd(TokenUsage(0, per, 0), model, pricing_id_for(provider))
    return repr(full / per), repr((cached if cached is not None else full) / per), repr((out or 0) / per)


def insert_sql(first: int, count: int, days: tuple[float, float], seed: int) -> str:
    """One INSERT of `count` calls numbered from `first`, between `days[0]` and `days[1]` days before today (UTC),
    in time order (a call log is appended as calls happen: its rows lie on disk roughly by time)."""
    models = "VALUES " + ", ".join(
        f"({i}, '{m}', '{p}', {speed!r}, {str(reasoning).lower()}, {', '.join(_unit_prices(m, p))})"
        for i, (m, p, _share, speed, reasoning) in enumerate(MODELS))
    model_i = _pick("u_model", [str(i) for i in range(len(MODELS))], [m[2] for m in MODELS])
    hour = _pick("u_hour", [str(h) for h in range(24)], list(HOURLY))
    tags = " || ".join(f"CASE WHEN u_tag{i} < 0.12 THEN ',\"{t}\"' ELSE '' END" for i, t in enumerate(TAGS))
    normal = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"  # Box–Muller: one N(0, 1) draw
    return f"""
    WITH r AS (
        SELECT g, random() AS u_day, random() AS u_hour, random() AS u_model, random() AS u_page,
               random() AS u_user, random() AS u_status, random() AS u_err, random() AS u_cache,
               {', '.join(f'random() AS u_tag{i}' for i in range(len(TAGS)))},
               greatest(5, exp(ln(600) + 0.9 * {normal}))::int AS inp, greatest(1, exp(ln(220) + 0.8 * {normal}))::int
               AS out0, exp(ln(450) + 0.55 * {normal}) AS ttft0, exp(0.25 * {normal}) AS noise,
               random() AS u_cached_share, random() AS u_sec
        FROM generate_series({first}, {first + count - 1}) g),
    m(i, model, provider, speed, reasoning, p_in, p_cached, p_out) AS ({models}),
    c AS (
        SELECT r.*, m.*, {hour} AS hour_of_day, floor({days[1]!r} - u_day * ({days[1]!r} - {days[0]!r}))::int AS day_back,
               {_pick("u_page", _quoted(PAGES), PAGE_P)} AS page0,
               {_pick("u_user", _quoted(USERS), USER_P)} AS usr,
               CASE WHEN u_status < 0.02 THEN 'error' WHEN u_status < 0.03 THEN 'cancelled' ELSE 'ok' END AS status,
               {_pick("u_err", _quoted(ERRORS), ERROR_P)} AS err,
               CASE WHEN u_cache < 0.3 THEN (inp * u_cached_share * 0.6)::int ELSE 0 END AS cach,
               '[' || ltrim({tags}, ',') || ']' AS tags
        FROM r JOIN m ON m.i = {model_i}),
    d AS (
        SELECT c.*,
               CASE model WHEN 'gpt-image-1' THEN 'images' WHEN 'omni-moderation-latest' THEN 'moderation'
                    ELSE page0 END AS page,
               CASE WHEN status = 'error' THEN err END AS error_type,
               CASE WHEN status = 'error' AND err <> 'stream_cut' THEN 0 WHEN model = 'gpt-image-1' THEN 1056
                    WHEN model = 'omni-moderation-latest' THEN 0
                    WHEN status = 'cancelled' OR (status = 'error' AND err = 'stream_cut') THEN greatest(1, out0 / 3)
                    ELSE out0 END AS out,
               ttft0 * CASE WHEN reasoning THEN 3 ELSE 1 END AS first
        FROM c),
    e AS (
        SELECT d.*, CASE WHEN status = 'error' AND err <> 'stream_cut' THEN 0
                         WHEN model = 'gpt-image-1' THEN inp / 20 + 10 ELSE inp END AS inp_used,
               CASE WHEN (status = 'error' AND err <> 'stream_cut') OR model IN ('gpt-image-1',
                    'omni-moderation-latest') THEN 0 ELSE cach END AS cach_used,
               CASE WHEN status = 'error' AND err = 'timeout' THEN 30000.0
                    WHEN status = 'error' AND err <> 'stream_cut' THEN exp(ln(300) + 0.5 * {normal})
                    WHEN model = 'gpt-image-1' THEN exp(ln(12000) + 0.3 * {normal})
                    WHEN model = 'omni-moderation-latest' THEN exp(ln(180) + 0.4 * {normal})
                    ELSE first + out / (speed * noise) * 1000 END AS latency
        FROM d)
    INSERT INTO calls (request_id, ts, page, provider, model_requested, model, status, error_type, input_tokens,
                       cached_input_tokens, output_tokens, reasoning_tokens, images, tokens_estimated, cost_usd,
                       latency_ms, ttft_ms, user_id, session_id, tags, cached, endpoint)
    SELECT 'sql_{seed}_' || g,
           to_char((current_date - day_back) + make_interval(hours => hour_of_day, secs => u_sec * 3599.999),
                   'YYYY-MM-DD"T"HH24:MI:SS.MS"+00:00"'),
           page, provider, model, model, status, error_type, inp_used, cach_used, out,
           CASE WHEN reasoning THEN out / 2 ELSE 0 END, CASE WHEN model = 'gpt-image-1' THEN 1 END,
           provider = 'compatible',
           CASE WHEN model = 'omni-moderation-latest' THEN 0
                ELSE (inp_used - cach_used) * p_in + cach_used * p_cached + out * p_out END,
           round(latency::numeric, 1),
           CASE WHEN speed > 0 AND NOT (status = 'error' AND err <> 'stream_cut') THEN round(first::numeric, 1) END,
           usr, 's_{seed}_' || usr || '_' || day_back, tags, false,
           CASE page WHEN 'images' THEN 'images.generate' WHEN 'moderation' THEN 'moderations'
                     WHEN 'other' THEN 'models' ELSE 'chat.completions' END
    FROM e ORDER BY 2"""


def fill(engine: sa.Engine, n: int, days: int = 90, seed: int = 0, chunk: int = 500_000,
         progress: bool = False) -> int:
    """Insert n synthetic calls (in statements of `chunk` rows); returns how many were inserted."""
    done, chunks = 0, max(1, -(-n // chunk))
    for i, first in enumerate(range(0, n, chunk)):
        count = min(chunk, n - first)
        span = (days - (i + 1) * days / chunks, days - i * days / chunks)  # oldest first
        with engine.begin() as conn:
            done += conn.execute(sa.text(insert_sql(first, count, span, seed))).rowcount
        if progress:
            print(f"  {done:,} / {n:,}", flush=True)
    return done

