"""English words left on each page with the UI in 中文 (used by tests/e2e/test_browser_i18n.py)."""
from __future__ import annotations

import re

# Words that stay as they are in a Chinese interface: names, formats, standards, units, parameter and variable
# names people type, and values the user or the data supplied.
AS_IS = {
    "PromptLab", "OpenAI", "ID", "xx", "Azure", "API", "URL", "Base", "JSON", "JSONL", "CSV", "YAML", "HTML", "Markdown",
    "Parquet", "ZIP", "UTC", "USD", "IBAN", "IP", "PII", "GGUF", "SQL", "Python", "Schema", "Batch", "Flex",
    "token", "tokens", "promptfoo", "genai", "prices", "results", "json", "yaml", "csv", "jsonl", "https", "http",
    "localhost", "api", "openai", "com", "v1", "chat", "model", "id", "auto", "off", "local", "none", "required",
    "top_p", "vars", "assert", "prompts", "providers", "defaultTest", "tests", "expected", "icontains", "days",
    "secrets", "toml", "python", "core", "calllog", "calls", "tail", "PROMPTLAB", "OPENAI", "ADMIN", "KEY", "CACHE", "TTL",
    "BASE", "LOCAL", "MODEL", "FALLBACK", "DB", "PROVIDER", "WebP", "JPEG", "PNG", "png", "jpeg", "webp", "p50", "p95", "p99",
    "ms", "sk", "ana", "pull", "request", "def", "avg", "xs", "return", "sum", "len", "f-string", "string",
    "Pro", "mini", "nano", "gpt", "smollm", "SmolLM", "Instruct", "ok", "error", "cancelled", "McNemar",
    "PDF", "previous_response_id", "vs_", "SECRET",  # a format; a parameter name; the prefix of a vector store id one types
}


def english_words(text: str) -> list[str]:
    words = re.findall(r"[A-Za-z][A-Za-z0-9_\-]*", text)
    return sorted({w for w in words if len(w) > 1 and w not in AS_IS
                   and not all(part in AS_IS or part.isdigit() or len(part) < 2 for part in re.split(r"[-_.]", w))})
