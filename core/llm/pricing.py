"""Prices of calls, from `genai-prices`' bundled data (works offline).

An unknown model is *unpriced* (cost None), never a silent $0. Input tokens include cached ones and output
tokens include reasoning ones, as OpenAI reports them; genai-prices applies the cache-read rate itself.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from genai_prices import Usage, calc_price

from core.base.i18n import N_, _, ngettext

UNPRICED = N_("unpriced")  # shown translated by format_cost
FREE = "free"  # the pricing id of providers that cost nothing (the embedded local model)
LOCAL_FREE_LABEL = N_("local (free)")
# Which genai-prices price list applies to each kind of provider (None: prices unknowable, e.g. a compatible
# server whose models could be anything). The one home of this mapping.
_PRICE_LISTS = {"openai": "openai", "azure": "azure", "local": FREE, "compatible": "compatible"}
NO_PRICE_DATA = ("compatible",)  # price lists genai-prices does not have: only custom prices apply there
# …except a reply whose model is one of OpenAI's dated snapshots (`gpt-4o-mini-2024-07-18`): that is what OpenAI's
# own API answers with, so a compatible server that reports it is a proxy in front of OpenAI and the call costs
# OpenAI's list price. A requested alias (`gpt-4o-mini`) proves nothing — LocalAI and friends serve local models
# under OpenAI's names — so it stays unpriced, with a hint (proxy_hint). Open-weight ids run anywhere, for free.
_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")
_OPEN_WEIGHTS = ("gpt-oss",)

# Custom prices (core/llm/custom_prices.py installs them): (price list, model) -> cost of a usage. They win over
# genai-prices, so a resold or self-hosted model can be priced, and a contract price can override the list price.
# Never changed in place: a new table replaces the old one in one assignment (see install_custom_prices).
_CUSTOM: Mapping[tuple[str, str], Callable[[TokenUsage], float]] = {}


def install_custom_prices(prices: Mapping[tuple[str, str], Callable[[TokenUsage], float]]) -> None:
    """Replace the custom prices in force (the keys are (price list id, model)).

    Other threads price calls meanwhile: the new table is built apart and swapped in by one assignment, so a
    reader sees the old prices or the new ones, never an emptied table (a custom-priced call priced at the list
    price, or unpriced)."""
    global _CUSTOM
    _CUSTOM = dict(prices)


def pricing_id_for(provider_kind: str) -> str | None:
    """The genai-prices provider id whose prices apply to calls of this provider kind."""
    return _PRICE_LISTS.get(provider_kind)


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call as OpenAI counts them; `estimated` when counted locally, not reported by the server."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0  # part of output_tokens (OpenAI counts them there), priced as output
    estimated: bool = False
    cache_write_tokens: int = 0  # part of input_tokens, priced at the cache-write rate where there is one

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                          self.cached_input_tokens + other.cached_input_tokens,
                          self.reasoning_tokens + other.reasoning_tokens, self.estimated or other.estimated,
                          self.cache_write_tokens + other.cache_write_tokens)


_UNKNOWN = "unknown"


@lru_cache(maxsize=1024)
def _flat_rates(model: str, provider_id: str) -> tuple[float, float, float] | str | None:
    """USD per token (input, cached input, output) when the model's price is flat; None when it is tiered
    (then every call goes through calc_price); "unknown" when genai-prices does not know the model."""
    try:
        price = calc_price(Usage(input_tokens=1), model, provider_id=provider_id).model_price
    except LookupError:
        return _UNKNOWN
    rates = (price.input_mtok, price.cache_read_mtok if price.cache_read_mtok is not None else price.input_mtok,
             price.output_mtok)
    flat = [r for r in rates if isinstance(r, (Decimal, int, float))]
    if len(flat) != len(rates):
        return None
    return float(flat[0]) / 1_000_000, float(flat[1]) / 1_000_000, float(flat[2]) / 1_000_000


def cost_usd(usage: TokenUsage, model: str, provider_id: str | None,
             context: Mapping[str, str] | None = None) -> float | None:
    """Cost of the usage in USD, or None when the model (or provider) has no known price.

    `context` selects a price variant genai-prices knows: the response's service tier (`{"service_tier":
    "flex"}`, `"priority"`) or Batch (`{"processing": "batch"}`). Flat list prices are memoised per model (an
    import of a million calls must not call calc_price a million times); tiers, variants and cache writes go
    through calc_price.
    """
    context = {k: v for k, v in (context or {}).items() if v and v not in ("default", "auto")}
    custom = _CUSTOM.get((provider_id or "", model))
    if custom is not None:
        return custom(usage)
    if provider_id == FREE:
        return 0.0
    if provider_id in NO_PRICE_DATA and is_openai_snapshot(model):
        provider_id = "openai"
    if provider_id is None or provider_id in NO_PRICE_DATA:
        return None
    rates = _flat_rates(model, provider_id)
    if rates == _UNKNOWN:
        return None
    if isinstance(rates, tuple) and not context and not usage.cache_write_tokens:
        fresh = usage.input_tokens - usage.cached_input_tokens
        return fresh * rates[0] + usage.cached_input_tokens * rates[1] + usage.output_tokens * rates[2]
    try:
        price = calc_price(Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                 cache_read_tokens=usage.cached_input_tokens or None,
                                 cache_write_tokens=usage.cache_write_tokens or None),
                           model, provider_id=provider_id, price_context=context or None)
    except LookupError:
        return None
    return float(price.total_price)


# OpenAI's Batch API (and Azure's Global Batch) bill at half the list price: https://platform.openai.com/docs/guides/batch
# ("50% cost discount compared to synchronous APIs"). genai-prices has OpenAI's batch prices as a variant (used
# first); where it has none (Azure, a custom price) this one documented rule applies.
BATCH_CONTEXT = {"processing": "batch"}
BATCH_DISCOUNT = 0.5


def batch_cost_usd(usage: TokenUsage, model: str, provider_id: str | None) -> float | None:
    """Cost of a usage answered through the Batch API: genai-prices' batch price where it has one, else the list
    price × BATCH_DISCOUNT. None when the model is unpriced."""
    live = cost_usd(usage, model, provider_id)
    if live is None or live == 0:
        return live
    batch = cost_usd(usage, model, provider_id, BATCH_CONTEXT)
    if batch is not None and batch < live:
        return batch
    return live * BATCH_DISCOUNT


@lru_cache(maxsize=256)
def context_window(model: str, provider_id: str | None) -> int | None:
    """The model's context window in tokens, when genai-prices knows it."""
    if provider_id in NO_PRICE_DATA and is_openai_snapshot(model):
        provider_id = "openai"
    if provider_id in (None, FREE, *NO_PRICE_DATA):
        return None
    try:
        return calc_price(Usage(input_tokens=0), model, provider_id=provider_id).model.context_window
    except LookupError:
        return None


@lru_cache(maxsize=1024)
def openai_model(model: str) -> str | None:
    """The OpenAI model genai-prices knows under exactly this id (or this id without its date), else None."""
    if model.lower().startswith(_OPEN_WEIGHTS):
        return None
    try:
        known = calc_price(Usage(input_tokens=1), model, provider_id="openai").model.id
    except LookupError:
        return None
    snapshot = _SNAPSHOT.match(model)
    return known if known in (model, snapshot and snapshot["base"]) else None


def is_openai_snapshot(model: str) -> bool:
    """A dated OpenAI snapshot id, as only OpenAI's API reports a reply's model (see _SNAPSHOT)."""
    return _SNAPSHOT.match(model) is not None and openai_model(model) is not None


def proxy_hint(unpriced: list[tuple[str, str, int]]) -> str | None:
    """One sentence when unpriced calls of a compatible server carry OpenAI model names: PromptLab cannot tell a
    proxy to OpenAI from a local model under an OpenAI name, the person who set it up can."""
    models = sorted({m for provider, m, _n in unpriced if provider == "compatible" and m and openai_model(m)})
    if not models:
        return None
    return _("{models} look like OpenAI models behind a proxy: if your OPENAI_BASE_URL forwards to OpenAI, set "
             "PROMPTLAB_PROVIDER=openai to price them at OpenAI's list prices.").format(models=", ".join(models))


def format_cost(cost: float | None) -> str:
    """`$0.0012`, `$1.23`, or `unpriced` — small costs keep significant digits instead of rounding to $0.00."""
    if cost is None:
        return _(UNPRICED)
    if cost == 0:
        return "$0"
    if cost < 0.01:
        return f"${Decimal(str(cost)):.2g}" if cost >= 1e-6 else "<$0.000001"
    return f"${cost:,.2f}" if cost >= 1 else f"${cost:.4f}".rstrip("0")


def format_cost_total(cost: float | None, unpriced: int = 0) -> str:
    """A sum over calls, some of which may be unpriced: `$0.12`, `$0.12 + 3 unpriced`, or `unpriced (3 calls)` when
    nothing was priced — never "$0" for work whose price is unknown (the priced part of a sum is not its total)."""
    if cost is None:
        return _(UNPRICED)
    if not unpriced:
        return format_cost(cost)
    if not cost:
        return ngettext("unpriced ({n} call)", "unpriced ({n} calls)", unpriced).format(n=unpriced)
    return format_cost(cost) + _(" + {n} unpriced").format(n=unpriced)


# ----- built-in tool calls (Responses API: web_search, file_search) -----------------------------------------------
# Fees per 1,000 calls, used when genai-prices has no tool-call price for the model (it prices `web_searches` and
# `storage_searches` for most OpenAI models: $10 and $2.50 per 1k, checked with genai-prices 0.2.5 on 2026-12-05).
# Source: OpenAI's API pricing page, "Built-in tools" (openai.com/api/pricing), as quoted on 2026-03-12 by
# modelcostwatch.com/openai/tool-costs/{web-search,file-search} and by OpenAI staff in the developer forum
# (community.openai.com/t/search-web-using-openai-api/1363698). The page itself was not among the stored sources
# when this was written, so a fee from this table is marked estimated. Search content tokens are not here: they
# come back in the response's usage and are priced at the model's token rates with the rest.
TOOL_CALL_FEES_PER_1K = {"web_search": 10.0, "web_search_preview": 25.0, "web_search_preview:reasoning": 10.0,
                         "file_search": 2.5}
_GENAI_TOOL_UNITS = {"web_search": "web_searches", "file_search": "storage_searches"}


@dataclass(frozen=True)
class ToolFees:
    """What a call's built-in tool calls cost on top of its tokens; `estimated` when from TOOL_CALL_FEES_PER_1K."""

    cost_usd: float | None
    estimated: bool = False


def tool_call_fees(calls: Mapping[str, int], model: str, provider_id: str | None, *,
                   reasoning: bool = False) -> ToolFees:
    """The fees of `calls` ({tool type as sent ("web_search", "web_search_preview", "file_search"): count}).
    genai-prices first (list price per model); else the table above (estimated); None on a provider with no price
    list (a compatible server), 0 on a free one."""
    calls = {tool: n for tool, n in calls.items() if n}
    if not calls:
        return ToolFees(0.0)
    if provider_id == FREE:
        return ToolFees(0.0)
    if provider_id is None or provider_id in NO_PRICE_DATA:
        return ToolFees(None)
    total, estimated = 0.0, False
    for tool, n in calls.items():
        unit = _GENAI_TOOL_UNITS.get(tool)
        listed = 0.0
        if unit is not None:
            try:
                listed = float(calc_price(Usage(input_tokens=0, **{unit: n}), model,
                                          provider_id=provider_id).total_price)
            except LookupError:
                listed = 0.0
        if listed:
            total += listed
            continue
        key = f"{tool}:reasoning" if reasoning and f"{tool}:reasoning" in TOOL_CALL_FEES_PER_1K else tool
        if key not in TOOL_CALL_FEES_PER_1K:
            return ToolFees(None)
        total += TOOL_CALL_FEES_PER_1K[key] * n / 1000
        estimated = True
    return ToolFees(total, estimated)
