"""What-if costs of the calls on screen: the same tokens on another model, through Batch or the Flex tier, and with
prompt caching at the share of input the cached calls reused. Estimates from genai-prices' list prices, labelled
as such — not what was billed."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.base.i18n import _
from core.llm.pricing import TokenUsage, cost_usd, pricing_id_for


@dataclass(frozen=True, kw_only=True)
class WhatIf:
    scenario: str
    cost_usd: float | None
    note: str = ""


def _priced(rows: pd.DataFrame, model_of, context=None, cached_share: float | None = None) -> float | None:
    total = 0.0
    for r in rows.itertuples():
        cached = int(r.cached_input_tokens) if cached_share is None else int(r.input_tokens * cached_share)
        usage = TokenUsage(int(r.input_tokens), int(r.output_tokens), max(cached, int(r.cached_input_tokens)))
        cost = cost_usd(usage, model_of(r), pricing_id_for(r.provider), context)
        if cost is None:
            return None
        total += cost
    return total


def scenarios(usage: pd.DataFrame, other_model: str | None = None) -> list[WhatIf]:
    """The what-if table for tokens per (provider, model) — `Analytics.usage_by_model` — of OpenAI / Azure calls
    (others are not list-priced). Each scenario compares with the list price of the same tokens."""
    rows = usage[usage["provider"].isin(["openai", "azure"])]
    if rows.empty:
        return []
    logged = float(rows["cost_usd"].sum()) if rows["cost_usd"].notna().all() else None
    inputs = int(rows["input_tokens"].sum())
    cached = int(rows["cached_input_tokens"].sum())
    reuse = cached / inputs if inputs else 0.0
    out = [WhatIf(scenario=_("As logged"), cost_usd=logged, note=_("what PromptLab priced for these calls")),
           WhatIf(scenario=_("List price of these tokens"), cost_usd=_priced(rows, lambda r: r.model),
                  note=_("the baseline of the rows below"))]
    if other_model:
        out.append(WhatIf(scenario=_("All on {model}").format(model=other_model),
                          cost_usd=_priced(rows, lambda r: other_model), note=_("same tokens, list price")))
    out.append(WhatIf(scenario=_("Through Batch"), cost_usd=_priced(rows, lambda r: r.model, {"processing": "batch"}),
                      note=_("list price of Batch (results within 24 h)")))
    out.append(WhatIf(scenario=_("On the Flex tier"), cost_usd=_priced(rows, lambda r: r.model,
                                                                   {"service_tier": "flex"}),
                      note=_("models without a Flex price stay at their list price")))
    out.append(WhatIf(scenario=_("Prompt caching at {reuse:.0%} reuse").format(reuse=reuse),
                      cost_usd=_priced(rows, lambda r: r.model, cached_share=reuse),
                      note=_("the share of input the cached calls reused, applied to all")))
    return out
