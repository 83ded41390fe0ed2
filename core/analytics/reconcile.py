"""Does the call log match the bill? PromptLab's tracked calls per day × model against OpenAI's Usage API (requests,
tokens) and Costs API (the billed amount per day and line item), with coverage — the share of the bill that went
through PromptLab — and each difference explained where it can be.

The admin key (`OPENAI_ADMIN_KEY`) is used for these two read-only endpoints only; like every key it is never
logged or shown. A fetched reconciliation is kept in the database, so the page opens without calling the API.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import openai
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.clock import utc_now_iso
from core.base.errors import PromptLabError, to_user_error
from core.base.i18n import N_, _

# Calls that are model work on OpenAI's bill: the chat, playground, evals and moderation pages. Model lists and
# connection tests ("other") are not requests to a model.
BILLABLE_PAGES = ("chat", "playground", "evals", "moderation")
# Priced work on other endpoints than chat completions (pages → endpoint). Their spend is on the bill, so it counts
# in tracked dollars and coverage; their requests are not in the completions Usage API, so they compare in dollars.
OTHER_ENDPOINTS = {"images": "images", "audio": "audio"}
# Voice calls are made from the chat page: told apart by the call log's endpoint column (m015), not by page.
AUDIO_ENDPOINTS = ("audio.transcriptions", "audio.speech")
UNATTRIBUTED = "unattributed"  # the model of a day's billed line items that name no model of that day


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Requests and tokens of one day × model (tracked by PromptLab, or billed by the provider)."""

    day: str
    model: str
    requests: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # tracked: None when some of its calls are unpriced
    batch_requests: int = 0  # billed: made through the Batch API
    tier_requests: dict[str, int] = field(default_factory=dict)  # billed: per non-default service tier
    endpoint: str = "completions"  # tracked: "images" for image generation (see OTHER_ENDPOINTS)


@dataclass(frozen=True, kw_only=True)
class ReconciledRow:
    day: str
    model: str
    tracked_requests: int
    billed_requests: int
    tracked_input_tokens: int
    billed_input_tokens: int
    tracked_output_tokens: int
    billed_output_tokens: int
    tracked_cost_usd: float | None
    explanation: str
    billed_cost_usd: float | None = None  # the Costs API's line items of this day that name this model

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class Reconciliation:
    """The comparison for a period: rows per day × model, the billed amount per day (and line item), coverage."""

    since: str
    until: str
    rows: list[ReconciledRow] = field(default_factory=list)
    billed_cost_by_day: dict[str, float] = field(default_factory=dict)
    billed_cost_by_line_item: dict[str, float] = field(default_factory=dict)
    # Day → line item → USD: what attributes billed dollars to rows (absent in reconciliations saved before it).
    billed_cost_by_day_item: dict[str, dict[str, float]] = field(default_factory=dict)
    fetched_at: str = field(default_factory=utc_now_iso)

    @property
    def tracked_cost_usd(self) -> float:
        return sum(r.tracked_cost_usd or 0.0 for r in self.rows)

    @property
    def unpriced_rows(self) -> int:
        """Day × model rows with unpriced calls: the tracked total leaves them out, and must say so."""
        return sum(r.tracked_cost_usd is None for r in self.rows)

    @property
    def billed_cost_usd(self) -> float:
        return sum(self.billed_cost_by_day.values())

    @property
    def coverage(self) -> float | None:
        """The share of the bill PromptLab tracked (None when nothing was billed)."""
        billed = self.billed_cost_usd
        return min(1.0, self.tracked_cost_usd / billed) if billed > 0 else None

    def unattributed(self) -> dict[str, float]:
        """Per day, the billed dollars no row carries (line items naming no model of that day: tools, storage,
        fine-tuning, models used elsewhere), so that rows plus these add up to the bill exactly."""
        carried: dict[str, float] = {}
        for r in self.rows:
            carried[r.day] = carried.get(r.day, 0.0) + (r.billed_cost_usd or 0.0)
        rest = {day: billed - carried.get(day, 0.0) for day, billed in self.billed_cost_by_day.items()}
        return {day: amount for day, amount in rest.items() if abs(amount) > 1e-12}

    def json_rows(self) -> list[dict[str, Any]]:
        """`reconcile --json`: one object per day × model with its own billed dollars (never the day's whole bill),
        and one "unattributed" object per day for the rest: billed_cost_usd sums to the bill."""
        rows = [r.to_dict() for r in self.rows]
        items = self.billed_cost_by_day_item
        for day, amount in self.unattributed().items():
            names = sorted(k for k in items.get(day, {}) if _line_item_model(k) not in
                           {_base(r.model) for r in self.rows if r.day == day and r.billed_cost_usd is not None})
            rows.append(ReconciledRow(
                day=day, model=UNATTRIBUTED, tracked_requests=0, billed_requests=0, tracked_input_tokens=0,
                billed_input_tokens=0, tracked_output_tokens=0, billed_output_tokens=0, tracked_cost_usd=0.0,
                billed_cost_usd=amount,
                explanation=_("billed, but no model of the day is named: {items}").format(
                    items=", ".join(names) if names else _("the Costs API's line items were not kept"))).to_dict())
        return sorted(rows, key=lambda r: (r["day"], r["model"] == UNATTRIBUTED, r["model"]))

    def day_totals(self) -> list[dict[str, Any]]:
        """Tracked (priced calls; `unpriced_rows` say what it leaves out) against billed dollars per day."""
        days = sorted({r.day for r in self.rows} | set(self.billed_cost_by_day))
        out = []
        for day in days:
            mine = [r.tracked_cost_usd for r in self.rows if r.day == day]
            out.append({"day": day, "tracked_cost_usd": sum(c or 0.0 for c in mine),
                        "unpriced_rows": sum(c is None for c in mine),
                        "billed_cost_usd": self.billed_cost_by_day.get(day, 0.0)})
        return out

    def to_json(self) -> str:
        return json.dumps({"since": self.since, "until": self.until, "fetched_at": self.fetched_at,
                           "rows": [r.to_dict() for r in self.rows], "billed_cost_by_day": self.billed_cost_by_day,
                           "billed_cost_by_line_item": self.billed_cost_by_line_item,
                           "billed_cost_by_day_item": self.billed_cost_by_day_item})

    @classmethod
    def from_json(cls, text: str) -> Reconciliation:
        data = json.loads(text)
        return cls(since=data["since"], until=data["until"], fetched_at=data["fetched_at"],
                   rows=[ReconciledRow(**r) for r in data["rows"]], billed_cost_by_day=data["billed_cost_by_day"],
                   billed_cost_by_line_item=data["billed_cost_by_line_item"],
                   billed_cost_by_day_item=data.get("billed_cost_by_day_item") or {})


def _epoch(day: date) -> int:
    return int(datetime.combine(day, time(), tzinfo=timezone.utc).timestamp())


def _day(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).date().isoformat()


def billed_usage(client: openai.OpenAI, since: date, until: date) -> list[Usage]:
    """The Usage API's completions per day × model for [since, until] (every page)."""
    out: list[Usage] = []
    page: str | None = None
    while True:
        extra: dict[str, Any] = {"page": page} if page else {}
        response = client.admin.organization.usage.completions(
            start_time=_epoch(since), end_time=_epoch(until + timedelta(days=1)), bucket_width="1d",
            group_by=["model", "batch", "service_tier"], limit=31, **extra)
        for bucket in response.data:
            for r in bucket.results:
                requests = getattr(r, "num_model_requests", 0) or 0
                tier = getattr(r, "service_tier", None)
                out.append(Usage(day=_day(bucket.start_time), model=getattr(r, "model", None) or "unknown",
                                 requests=requests, input_tokens=getattr(r, "input_tokens", 0) or 0,
                                 cached_input_tokens=getattr(r, "input_cached_tokens", 0) or 0,
                                 output_tokens=getattr(r, "output_tokens", 0) or 0,
                                 batch_requests=requests if getattr(r, "batch", None) else 0,
                                 tier_requests={tier: requests} if tier and tier not in ("default", "auto")
                                 else {}))
        if not response.has_more or not response.next_page:
            return out
        page = response.next_page


def billed_costs(client: openai.OpenAI, since: date, until: date) -> tuple[dict[str, float], dict[str, float]]:
    """The Costs API: billed USD per day, and per line item over the period."""
    return _totals(billed_costs_by_day_item(client, since, until))


def _totals(by_day_item: dict[str, dict[str, float]]) -> tuple[dict[str, float], dict[str, float]]:
    """Day → line item → USD summed per day, and per line item over the period."""
    by_day: dict[str, float] = {}
    by_item: dict[str, float] = {}
    for day, items in by_day_item.items():
        for item, value in items.items():
            by_day[day] = by_day.get(day, 0.0) + value
            by_item[item] = by_item.get(item, 0.0) + value
    return by_day, by_item


def billed_costs_by_day_item(client: openai.OpenAI, since: date, until: date) -> dict[str, dict[str, float]]:
    """The Costs API: billed USD per day and line item ("gpt-4o-mini-2024-07-18, input", "web search tool calls")."""
    by_day_item: dict[str, dict[str, float]] = {}
    page: str | None = None
    while True:
        extra: dict[str, Any] = {"page": page} if page else {}
        response = client.admin.organization.usage.costs(
            start_time=_epoch(since), end_time=_epoch(until + timedelta(days=1)), bucket_width="1d",
            group_by=["line_item"], limit=31, **extra)
        for bucket in response.data:
            day = by_day_item.setdefault(_day(bucket.start_time), {})
            for r in bucket.results:
                value = float(getattr(getattr(r, "amount", None), "value", None) or 0.0)
                item = getattr(r, "line_item", None) or "other"
                day[item] = day.get(item, 0.0) + value
        if not response.has_more or not response.next_page:
            return by_day_item
        page = response.next_page


def tracked_usage(engine: Engine, since: date, until: date, providers: tuple[str, ...] = ("openai",)) -> list[Usage]:
    """PromptLab's own calls per day × model: billable pages and priced endpoints (images), calls that reached the
    model (ok or stopped)."""
    # SQLite: "+ts" keeps the planner off the ts index — for a period of weeks one pass over the table is 2.5x
    # faster than an index walk with a row lookup per call (measured in bench/reconcile.py).
    ts = "+ts" if engine.dialect.name == "sqlite" else "ts"
    query = sa.text(
        "SELECT substr(ts, 1, 10) AS day, coalesce(model, model_requested) AS model, "
        "CASE WHEN endpoint IN :audio THEN 'audio' WHEN page IN :other THEN page ELSE 'completions' END AS endpoint, "
        "count(*) AS requests, "
        "coalesce(sum(input_tokens), 0) AS input_tokens, coalesce(sum(cached_input_tokens), 0) AS cached, "
        "coalesce(sum(output_tokens), 0) AS output_tokens, sum(cost_usd) AS cost, "
        "count(*) - count(cost_usd) AS unpriced "
        f"FROM calls WHERE {ts} >= :since AND {ts} < :until AND status IN ('ok', 'cancelled') "
        "AND NOT coalesce(cached, FALSE) AND page IN :pages AND provider IN :providers "
        "GROUP BY 1, 2, 3").bindparams(sa.bindparam("pages", expanding=True), sa.bindparam("providers", expanding=True),
                                       sa.bindparam("other", expanding=True), sa.bindparam("audio", expanding=True))
    with engine.connect() as conn:
        rows = conn.execute(query, {"since": since.isoformat(), "until": (until + timedelta(days=1)).isoformat(),
                                    "pages": [*BILLABLE_PAGES, *OTHER_ENDPOINTS], "providers": list(providers),
                                    "other": list(OTHER_ENDPOINTS), "audio": list(AUDIO_ENDPOINTS)}).all()
    return [Usage(day=r.day, model=r.model or "unknown", requests=int(r.requests), input_tokens=int(r.input_tokens),
                  cached_input_tokens=int(r.cached), output_tokens=int(r.output_tokens),
                  cost_usd=None if r.unpriced else float(r.cost or 0.0),
                  endpoint=OTHER_ENDPOINTS.get(r.endpoint, "completions")) for r in rows]


# Each difference is one of these sentences. A row stores them in English (the `--json` output and the saved
# comparison stay stable, whoever fetched it); `explanation_text` shows them in the viewer's language.
MATCHES = N_("matches")
BATCH = N_("{n} Batch API requests (not made through PromptLab; billed at Batch prices)")
TIER = N_("{n} requests on the {tier} tier (priced at that tier's rates)")
OUTSIDE = N_("{n} requests made outside PromptLab (another app, key or project)")
NOT_BILLED = N_("{n} tracked requests the provider did not bill (another organisation or project, or the bill is "
                "not final yet)")
TOKENS_DIFFER = N_("same requests, different token counts (estimated counts, or usage the stream did not report)")
UNPRICED = N_("the model is missing from the price data: its calls are unpriced in PromptLab")
_NOTES = (MATCHES, BATCH, TIER, OUTSIDE, NOT_BILLED, TOKENS_DIFFER, UNPRICED)


def _pattern(template: str) -> re.Pattern[str]:
    """A note's template as a regular expression whose groups are its placeholders."""
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile("".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^;]+?)" for i, p in enumerate(parts)) + "$")


_PATTERNS = [(t, _pattern(t)) for t in _NOTES]


def explanation_text(explanation: str) -> str:
    """A row's stored (English) explanation in the UI language; a note this version does not know stays as it is."""
    shown = []
    pieces = explanation.split("; ")  # a note may hold "; " itself: the shortest run of pieces that is a note
    start = 0
    while start < len(pieces):
        for end in range(start + 1, len(pieces) + 1):
            note = "; ".join(pieces[start:end])
            found = next(((t, m) for t, p in _PATTERNS if (m := p.match(note))), None)
            if found:
                shown.append(_(found[0]).format(**found[1].groupdict()))
                start = end
                break
        else:
            shown.append(pieces[start])
            start += 1
    return _("; ").join(shown)


def _explain(tracked: Usage | None, billed: Usage | None) -> str:
    t_req, b_req = (tracked.requests if tracked else 0), (billed.requests if billed else 0)
    notes = []
    batch = billed.batch_requests if billed else 0
    if batch:  # PromptLab never uses the Batch API: those requests came from elsewhere, at Batch prices
        notes.append(BATCH.format(n=batch))
    for tier, n in sorted((billed.tier_requests if billed else {}).items()):
        notes.append(TIER.format(n=n, tier=tier))
    if b_req - batch > t_req:
        notes.append(OUTSIDE.format(n=b_req - batch - t_req))
    elif t_req > b_req:
        notes.append(NOT_BILLED.format(n=t_req - b_req))
    elif tracked and billed and (tracked.input_tokens != billed.input_tokens
                                 or tracked.output_tokens != billed.output_tokens):
        notes.append(TOKENS_DIFFER)
    if tracked is not None and tracked.cost_usd is None:
        notes.append(UNPRICED)
    return "; ".join(notes) or MATCHES


def _base(model: str) -> str:
    """A model id without its date suffix (gpt-4o-mini-2024-07-18 → gpt-4o-mini)."""
    parts = model.split("-")
    return "-".join(parts[:-3]) if len(parts) > 3 and all(p.isdigit() for p in parts[-3:]) else model


def _line_item_model(item: str) -> str | None:
    """The model a Costs API line item names ("gpt-4o-mini-2024-07-18, input" → gpt-4o-mini), None when it names
    none ("web search tool calls")."""
    head, sep, _rest = item.partition(",")
    return _base(head.strip()) if sep and head.strip() and " " not in head.strip() else None


def reconcile(tracked: list[Usage], billed: list[Usage], billed_by_day: dict[str, float],
              billed_by_line_item: dict[str, float], since: date, until: date,
              billed_by_day_item: dict[str, dict[str, float]] | None = None) -> Reconciliation:
    """Pair tracked and billed usage by day × model (model ids compared without their date suffix when only one
    side has it, e.g. gpt-4o-mini vs gpt-4o-mini-2024-07-18); billed dollars go to the row whose model the line
    item names, the rest of a day to its "unattributed" row (json_rows)."""
    base = _base
    mine = {(u.day, base(u.model)): u for u in tracked}
    theirs: dict[tuple[str, str], Usage] = {}
    for u in billed:
        key = (u.day, base(u.model))
        prev = theirs.get(key)
        theirs[key] = u if prev is None else Usage(
            day=u.day, model=key[1], requests=prev.requests + u.requests,
            input_tokens=prev.input_tokens + u.input_tokens, cached_input_tokens=prev.cached_input_tokens +
            u.cached_input_tokens, output_tokens=prev.output_tokens + u.output_tokens,
            batch_requests=prev.batch_requests + u.batch_requests,
            tier_requests={t: prev.tier_requests.get(t, 0) + u.tier_requests.get(t, 0)
                           for t in {*prev.tier_requests, *u.tier_requests}})
    dollars: dict[tuple[str, str], float] = {}
    for day, items in (billed_by_day_item or {}).items():
        for item, value in items.items():
            model = _line_item_model(item)
            if model is not None:
                dollars[(day, model)] = dollars.get((day, model), 0.0) + value
    rows = []
    for key in sorted(set(mine) | set(theirs) | set(dollars)):
        t, b = mine.get(key), theirs.get(key)
        explanation = _explain(t, b)
        if t is None and b is None:  # only on the Costs API: e.g. images made elsewhere (not in the Usage API's
            # completions), so there are no requests to compare
            explanation = _("billed, not tracked: made outside PromptLab, on an endpoint whose requests are not "
                            "compared (images, audio, embeddings)")
        elif t is not None and t.endpoint != "completions" and b is None:
            # Not "tracked requests the provider did not bill": the completions Usage API never counts images or audio.
            explanation = (_("audio (transcription, speech): not in the Usage API's completions, compared in dollars")
                           if t.endpoint == "audio" else
                           _("image generation: not in the Usage API's completions, compared in dollars"))
            if t.cost_usd is None:  # _explain's last note is the unpriced one
                explanation += "; " + _explain(t, None).split("; ")[-1]
        rows.append(ReconciledRow(
            day=key[0], model=key[1], tracked_requests=t.requests if t else 0,
            billed_requests=b.requests if b else 0, tracked_input_tokens=t.input_tokens if t else 0,
            billed_input_tokens=b.input_tokens if b else 0, tracked_output_tokens=t.output_tokens if t else 0,
            billed_output_tokens=b.output_tokens if b else 0, tracked_cost_usd=t.cost_usd if t else 0.0,
            explanation=explanation,
            billed_cost_usd=dollars.get(key, 0.0) if billed_by_day_item is not None else None))
    return Reconciliation(since=since.isoformat(), until=until.isoformat(), rows=rows,
                          billed_cost_by_day=dict(sorted(billed_by_day.items())),
                          billed_cost_by_line_item=billed_by_line_item,
                          billed_cost_by_day_item=billed_by_day_item or {})


def fetch(client: openai.OpenAI, engine: Engine, since: date, until: date) -> Reconciliation:
    """Ask the provider, compare with the log, keep the result; raises PromptLabError (one sentence)."""
    try:
        usage = billed_usage(client, since, until)
        by_day_item = billed_costs_by_day_item(client, since, until)
    except openai.OpenAIError as exc:
        raise to_user_error(exc, secrets=(getattr(client, "admin_api_key", None), client.api_key),
                            operation="usage") from None
    by_day, by_item = _totals(by_day_item)
    result = reconcile(tracked_usage(engine, since, until), usage, by_day, by_item, since, until, by_day_item)
    save(engine, result)
    return result


def save(engine: Engine, result: Reconciliation) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM reconciliations WHERE period = :p"),
                     {"p": f"{result.since}..{result.until}"})
        conn.execute(sa.text("INSERT INTO reconciliations (period, fetched_at, body) VALUES (:p, :t, :b)"),
                     {"p": f"{result.since}..{result.until}", "t": result.fetched_at, "b": result.to_json()})


def saved(engine: Engine, since: date, until: date) -> Reconciliation | None:
    """The last reconciliation fetched for this period (the page opens on it without calling the API)."""
    with engine.connect() as conn:
        body = conn.execute(sa.text("SELECT body FROM reconciliations WHERE period = :p"),
                            {"p": f"{since.isoformat()}..{until.isoformat()}"}).scalar()
    return Reconciliation.from_json(body) if body else None


def admin_client(api_key: str, base_url: str | None, timeout_s: float = 30) -> openai.OpenAI:
    """A client for the Usage and Costs endpoints only (the admin key is sent there and nowhere else)."""
    if not api_key:
        raise PromptLabError("no_key", _("Reconciling needs an OpenAI admin key: set OPENAI_ADMIN_KEY."))
    return openai.OpenAI(api_key="unused-for-admin-endpoints", admin_api_key=api_key, base_url=base_url,
                         timeout=timeout_s, max_retries=2)
