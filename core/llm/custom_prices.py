"""Custom prices per provider + model — for a compatible server (self-hosted or resold models genai-prices cannot
know) or to override a list price with a contract one. Set in Settings (stored in the database) or in a TOML file
(`PROMPTLAB_PRICES_FILE`, in the environment or secrets.toml; `[[price]]` tables); the database's entry wins for
the same provider and model.

When prices change, calls already in the log are priced again — never a silent $0 — and the change is in the audit
log. The gate reloads them from the database every RELOAD_S, so every server process uses the same prices.

```toml
[[price]]
provider = "compatible"     # openai | azure | compatible
model = "llama3.1:8b"
input_per_mtok = 0.20        # USD per 1M input tokens
cached_input_per_mtok = 0.05 # optional (default: the input price)
output_per_mtok = 0.60
per_image = 0.04             # optional, image models

[[price]]                    # audio models: the token prices may be left out
provider = "compatible"
model = "whisper-large-v3"
per_audio_minute = 0.006     # transcription, per minute of audio
# per_mchars = 15.0          # speech, per 1M characters read aloud
# audio_input_per_mtok = 3.0 # transcription, per 1M audio tokens (text tokens at input_per_mtok)
```
"""
from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.config import load_settings
from core.base.i18n import _
from core.llm.pricing import TokenUsage, install_custom_prices, pricing_id_for
from core.policy.access import Identity
from core.policy.audit import audit
from core.policy.workspace import Setting, Workspace

RELOAD_S = 30.0
AUDIO_KEYS = ("per_audio_minute", "per_mchars", "audio_input_per_mtok")
PROVIDERS = ("openai", "azure", "compatible")


@dataclass(frozen=True, kw_only=True)
class CustomPrice:
    provider: str
    model: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    per_image: float | None = None
    per_audio_minute: float | None = None  # transcription: USD per minute of audio
    per_mchars: float | None = None  # speech: USD per 1M characters of text read aloud
    audio_input_per_mtok: float | None = None  # transcription: USD per 1M input audio tokens

    @property
    def audio(self) -> bool:
        """Whether this price covers audio (then the token prices may be left out: they default to 0)."""
        return any(v is not None for v in (self.per_audio_minute, self.per_mchars, self.audio_input_per_mtok))

    def cost(self, usage: TokenUsage) -> float:
        cached = usage.cached_input_tokens
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return ((usage.input_tokens - cached) * self.input_per_mtok + cached * cached_rate
                + usage.output_tokens * self.output_per_mtok) / 1_000_000

    @classmethod
    def checked(cls, data: Any, where: str = "A price") -> CustomPrice:
        """From untrusted data (a TOML file, a form): one sentence when something is wrong."""
        if not isinstance(data, dict):
            raise ValueError(_('{where} must be a table with provider, model and prices.').format(where=where))
        if data.get("provider") not in PROVIDERS:
            raise ValueError(_('{where}: provider must be one of {providers}.').format(
                where=where, providers=', '.join(PROVIDERS)))
        if not isinstance(data.get("model"), str) or not data["model"].strip():
            raise ValueError(_('{where} needs a model id.').format(where=where))
        values: dict[str, float | None] = {}
        audio = any(data.get(k) is not None for k in AUDIO_KEYS)
        for key in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "per_image", *AUDIO_KEYS):
            v = data.get(key)
            required = key in ("input_per_mtok", "output_per_mtok") and not audio
            if v is None and not required:
                values[key] = None
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1e6:
                raise ValueError(_('{where}: {key} must be a number of US dollars from 0.').format(
                    where=where, key=key))
            values[key] = float(v)
        return cls(provider=data["provider"], model=data["model"].strip(),
                   input_per_mtok=values["input_per_mtok"] or 0.0, output_per_mtok=values["output_per_mtok"] or 0.0,
                   cached_input_per_mtok=values["cached_input_per_mtok"], per_image=values["per_image"],
                   **{k: values[k] for k in AUDIO_KEYS})


@dataclass
class PriceBook:
    prices: list[dict[str, Any]] = field(default_factory=list)


CUSTOM_PRICES: Setting[PriceBook] = Setting("custom_prices", PriceBook(), stored_as=PriceBook,
                                            unset_when=lambda book: not book.prices)


def read_file(path: str) -> list[CustomPrice]:
    """The `[[price]]` tables of a TOML file; raises ValueError (one sentence) when it cannot be used."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ValueError(_('The prices file {path} could not be read ({strerror}).').format(
            path=path, strerror=exc.strerror)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(_('The prices file {path} is not valid TOML ({exc}).').format(path=path, exc=exc)) from None
    return [CustomPrice.checked(p, f"Price {i + 1} in {path}") for i, p in enumerate(data.get("price", []))]


def stored(engine: Engine) -> list[CustomPrice]:
    return [CustomPrice.checked(p) for p in Workspace(engine).load(CUSTOM_PRICES).prices]


def in_force(engine: Engine, file: str | None = None) -> list[CustomPrice]:
    """The file's prices, then the database's (which win for the same provider and model)."""
    merged = {(p.provider, p.model): p for p in (read_file(file) if file else [])}
    merged.update({(p.provider, p.model): p for p in stored(engine)})
    return list(merged.values())


def install(prices: list[CustomPrice]) -> None:
    """Put these prices in force. Calls are priced in other threads meanwhile, so each table is built apart and
    swapped in by one assignment (never emptied and refilled in place)."""
    global _per_image, _audio
    install_custom_prices({(pricing_id_for(p.provider) or p.provider, p.model): p.cost for p in prices})
    _per_image = {(pricing_id_for(p.provider) or p.provider, p.model): p.per_image for p in prices
                  if p.per_image is not None}
    _audio = {(pricing_id_for(p.provider) or p.provider, p.model): p for p in prices if p.audio}


_per_image: Mapping[tuple[str, str], float] = {}
_audio: Mapping[tuple[str, str], CustomPrice] = {}
_loaded: dict[int, float] = {}
_files: dict[int, str | None] = {}  # per database: the prices file of the app's Settings (see use_file)
_lock = threading.Lock()


def image_price(provider_id: str | None, model: str) -> float | None:
    """A custom price per image, when one is set for this provider's model."""
    return _per_image.get((provider_id or "", model))


def audio_price(provider_id: str | None, model: str) -> CustomPrice | None:
    """A custom price with an audio unit (per minute, per 1M characters, per 1M audio tokens) for this provider's
    model, when one is set."""
    return _audio.get((provider_id or "", model))


def use_file(engine: Engine, file: str | None) -> None:
    """The prices file the gate reads with this database: `Settings.prices_file` (environment, then secrets.toml),
    handed in by the app, which alone sees st.secrets. A different file is loaded on the next call."""
    with _lock:
        if id(engine) not in _files or _files[id(engine)] != file:
            _files[id(engine)] = file
            _loaded.pop(id(engine), None)


def ensure_loaded(engine: Engine) -> None:
    """Install the prices in force, at most every RELOAD_S per database (the gate calls this before pricing).
    The file: the one the app's Settings named (`use_file`); else, as on the command line, the environment's."""
    key = id(engine)
    with _lock:
        if time.monotonic() - _loaded.get(key, -RELOAD_S) < RELOAD_S:
            return
        _loaded[key] = time.monotonic()
        file = _files.get(key) or load_settings().prices_file
    install(in_force(engine, file))


def save(engine: Engine, prices: list[CustomPrice], *, actor: Identity) -> int:
    """Store the prices, put them in force, price the logged calls they cover again; returns how many were.
    Prices change what everyone's calls cost: an admin's change (AdminOnly otherwise), audited."""
    Workspace(engine).save(CUSTOM_PRICES, PriceBook([asdict(p) for p in prices]), actor=actor)
    install(prices)
    with _lock:
        _loaded[id(engine)] = time.monotonic()
    repriced = reprice(engine, prices)
    audit(engine, actor.name, "prices", None, {"prices": len(prices), "calls_repriced": repriced})
    return repriced


def unpriced_models(engine: Engine, limit: int = 20) -> list[tuple[str, str, int]]:
    """(provider, model, calls) of logged model work without a price, most calls first (one pass over the log:
    callers cache it)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT provider, coalesce(model, model_requested) AS m, count(*) AS n FROM calls WHERE cost_usd IS NULL "
            "AND status IN ('ok', 'cancelled') AND provider != 'local' GROUP BY 1, 2 ORDER BY 3 DESC LIMIT :l"),
            {"l": limit}).all()
    return [(r.provider, r.m, int(r.n)) for r in rows]


def reprice(engine: Engine, prices: list[CustomPrice]) -> int:
    """Set the cost of every logged call of these providers' models from its tokens (and images). Audio calls are
    left as they are: their minutes and characters are not in the log's columns (a new price applies from the
    next call)."""
    count = 0
    with engine.begin() as conn:
        for p in prices:
            rows = conn.execute(sa.text(
                "SELECT request_id, input_tokens, cached_input_tokens, output_tokens, images FROM calls "
                "WHERE provider = :provider AND coalesce(model, model_requested) = :model "
                "AND endpoint NOT IN ('audio.transcriptions', 'audio.speech')"),
                {"provider": p.provider, "model": p.model}).all()
            for r in rows:
                usage = TokenUsage(r.input_tokens or 0, r.output_tokens or 0, r.cached_input_tokens or 0)
                cost = p.cost(usage) + (p.per_image or 0.0) * (r.images or 0)
                conn.execute(sa.text("UPDATE calls SET cost_usd = :c WHERE request_id = :id"),
                             {"c": cost, "id": r.request_id})
            count += len(rows)
    return count
