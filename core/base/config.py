"""Settings: the one home of configuration.

Resolution order for every setting: environment variable, then `st.secrets` (handed in by app.py as a plain
mapping so this module stays free of streamlit), then the default below.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

DEFAULT_DB_URL = "sqlite:///data/promptlab.db"


@dataclass(frozen=True)
class Settings:
    """Everything PromptLab reads from its environment; secrets are hidden from repr."""

    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_admin_key: str | None = field(default=None, repr=False)  # Usage / Costs APIs (reconciliation) only
    openai_org_id: str | None = None
    azure_api_key: str | None = field(default=None, repr=False)
    azure_endpoint: str | None = None
    azure_api_version: str = "2024-10-21"
    provider: str = "auto"  # auto | openai | azure | compatible | local
    timeout_s: float = 30.0
    max_retries: int = 2
    db_url: str = DEFAULT_DB_URL
    default_model: str = "gpt-4o-mini"
    user: str = "local"
    fallback_context_tokens: int = 8192
    local_model_path: str | None = None
    models_dir: str | None = None  # None: <data_dir>/models
    confirm_cost_usd: float = 1.0
    data_dir: str = "data"
    metrics_port: int | None = None
    metrics_addr: str = "127.0.0.1"
    prices_file: str | None = None
    fallback: str = "auto"
    cache_ttl_s: float = 86_400.0
    password_hash: str | None = field(default=None, repr=False)
    users: str | None = field(default=None, repr=False)  # name:hash,… (or a [users] table in secrets.toml)
    admins: str | None = None
    allowed_base_urls: str | None = None  # URLs, hosts, networks a non-admin may point a provider at beyond the internet
    ui_language: str | None = None  # en | zh_CN; unset: the browser's language

    @property
    def offline_models_dir(self) -> str:
        """Where the default offline model is fetched to (and the model process writes its log)."""
        return self.models_dir or os.path.join(self.data_dir, "models")

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every key this configuration holds: what exports and shared reports must never contain."""
        return tuple(v for v in (self.openai_api_key, self.openai_admin_key, self.azure_api_key) if v)

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (the Settings page's per-session switch)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# setting name -> (environment variable, secrets key, type)
_SOURCES: dict[str, tuple[str, type]] = {
    "openai_api_key": ("OPENAI_API_KEY", str),
    "openai_base_url": ("OPENAI_BASE_URL", str),
    "openai_admin_key": ("OPENAI_ADMIN_KEY", str),
    "openai_org_id": ("OPENAI_ORG_ID", str),
    "azure_api_key": ("AZURE_OPENAI_API_KEY", str),
    "azure_endpoint": ("AZURE_OPENAI_ENDPOINT", str),
    "azure_api_version": ("OPENAI_API_VERSION", str),
    "provider": ("PROMPTLAB_PROVIDER", str),
    "timeout_s": ("PROMPTLAB_TIMEOUT_S", float),
    "max_retries": ("PROMPTLAB_MAX_RETRIES", int),
    "db_url": ("PROMPTLAB_DB_URL", str),
    "default_model": ("PROMPTLAB_MODEL", str),
    "user": ("PROMPTLAB_USER", str),
    "fallback_context_tokens": ("PROMPTLAB_CONTEXT_TOKENS", int),
    "local_model_path": ("PROMPTLAB_LOCAL_MODEL", str),
    "models_dir": ("PROMPTLAB_MODELS_DIR", str),
    "confirm_cost_usd": ("PROMPTLAB_CONFIRM_USD", float),
    "data_dir": ("PROMPTLAB_DATA_DIR", str),
    "metrics_port": ("PROMPTLAB_METRICS_PORT", int),
    "metrics_addr": ("PROMPTLAB_METRICS_ADDR", str),
    "prices_file": ("PROMPTLAB_PRICES_FILE", str),
    "fallback": ("PROMPTLAB_FALLBACK", str),
    "cache_ttl_s": ("PROMPTLAB_CACHE_TTL_S", float),
    "password_hash": ("PROMPTLAB_PASSWORD_HASH", str),
    "users": ("PROMPTLAB_USERS", str),
    "admins": ("PROMPTLAB_ADMINS", str),
    "allowed_base_urls": ("PROMPTLAB_ALLOWED_BASE_URLS", str),
    "ui_language": ("PROMPTLAB_UI_LANGUAGE", str),
}

# The README table is generated from this list, so documentation and code cannot drift apart.
SETTING_DOCS: dict[str, str] = {
    "OPENAI_API_KEY": "OpenAI (or compatible server) API key",
    "OPENAI_BASE_URL": "Any OpenAI-compatible server, e.g. http://localhost:11434/v1 (Ollama)",
    "OPENAI_ORG_ID": "OpenAI organization id",
    "AZURE_OPENAI_API_KEY": "Azure OpenAI key",
    "AZURE_OPENAI_ENDPOINT": "Azure OpenAI endpoint, https://NAME.openai.azure.com",
    "OPENAI_API_VERSION": "Azure OpenAI API version",
    "PROMPTLAB_PROVIDER": "auto (guess from the keys set), openai, azure, compatible or local",
    "PROMPTLAB_TIMEOUT_S": "Timeout of one API call in seconds",
    "PROMPTLAB_MAX_RETRIES": "SDK retries on 429 / 5xx / connection errors (honours Retry-After)",
    "PROMPTLAB_DB_URL": "SQLAlchemy URL of the call log and conversations",
    "PROMPTLAB_MODEL": "Model selected when a page opens",
    "PROMPTLAB_USER": "User id written to the call log",
    "PROMPTLAB_CONTEXT_TOKENS": "Context window assumed for models whose window is unknown",
    "PROMPTLAB_LOCAL_MODEL": "Path of a GGUF file for the offline model (default: SmolLM2-135M-Instruct, fetched "
                             "from the package index on first start)",
    "PROMPTLAB_MODELS_DIR": "Where the default offline model is kept (default: `models/` in the data directory)",
    "PROMPTLAB_CONFIRM_USD": "Playground runs whose estimated cost exceeds this ask for confirmation",
    "PROMPTLAB_DATA_DIR": "Where generated images and the offline model are kept (image metadata is in the "
                          "database)",
    "OPENAI_ADMIN_KEY": "An OpenAI admin key, for reconciling the call log with the organisation's Usage and Costs "
                        "(read-only use; never logged or shown)",
    "PROMPTLAB_METRICS_PORT": "Serve Prometheus metrics at /metrics on this port (off when unset)",
    "PROMPTLAB_METRICS_ADDR": "The address /metrics listens on (default 127.0.0.1: this machine only; it has no "
                              "authentication — put a proxy in front before widening it)",
    "PROMPTLAB_PRICES_FILE": "A TOML file of custom prices (`[[price]]`: provider, model, input_per_mtok, "
                             "output_per_mtok, cached_input_per_mtok, per_image); prices set in Settings win",
    "PROMPTLAB_FALLBACK": "Models tried after the chosen one fails (timeout, 5xx, no connection): auto "
                          "(a cheaper sibling, then the offline model), off, or a comma list (`local` = offline)",
    "PROMPTLAB_CACHE_TTL_S": "How long a cached reply is served (temperature 0, or when opted in); 0 = no cache",
    "PROMPTLAB_PASSWORD_HASH": "One shared password for a trusted team (the hash from `python -m core access "
                               "hash`, never the password); names typed at sign-in are labels, nobody is isolated",
    "PROMPTLAB_USERS": "Named users, each with their own password: `name:hash,name:hash` (hashes from `python -m "
                       "core access hash`), or a `[users]` table in secrets.toml; each sees only their own data. "
                       "OpenID Connect instead: an `[auth]` section in secrets.toml",
    "PROMPTLAB_ADMINS": "Comma-separated user names (or OIDC e-mails) who may open, export and delete others' data, "
                        "change the workspace's settings (text policy, retention, cache, budget, rate limits, "
                        "fallback chains, moderation, prices) and point a provider at another URL with the server's "
                        "key (every such action is in the audit log)",
    "PROMPTLAB_ALLOWED_BASE_URLS": "Comma-separated URL prefixes (`http://ollama.internal:11434/v1`), hosts "
                                   "(`vllm.lan`, `vllm.lan:8000`) or networks (`10.20.0.0/16`) that users who are not "
                                   "admins may point a provider at (Settings, an eval's `apiBaseUrl`) although they "
                                   "are loopback, private or link-local; the configured endpoints are always allowed, "
                                   "and admins may choose any URL",
    "PROMPTLAB_UI_LANGUAGE": "Interface language when a browser has not chosen one: `en` or `zh_CN` (简体中文); "
                             "unset: the browser's own language",
}


def _coerce(raw: Any, kind: type) -> Any:
    if kind is str:
        text = str(raw).strip()
        return text or None
    return kind(raw)


def load_settings(secrets: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment, then secrets, then defaults."""
    environ = os.environ if environ is None else environ
    secrets = secrets or {}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        env_name, kind = _SOURCES[f.name]
        for source in (environ, secrets):
            if source.get(env_name) not in (None, ""):
                value = _coerce(source[env_name], kind)
                if value is not None:
                    values[f.name] = value
                    break
    return Settings(**values)


def settings_table_markdown() -> str:
    """The README's configuration table."""
    defaults = Settings()
    rows = ["| Variable | Meaning | Default |", "| --- | --- | --- |"]
    for name, (env_name, _) in _SOURCES.items():
        default = getattr(defaults, name)
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `{env_name}` | {SETTING_DOCS[env_name]} | {shown} |")
    return "\n".join(rows)
