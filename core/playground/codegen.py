""""View code": the exact request of a playground configuration as Python (openai SDK) and as curl.
The key is always read from the environment, never written into the code.
"""
from __future__ import annotations

import json
import pprint
from typing import Any

from core.llm.providers import Provider

OPENAI_URL = "https://api.openai.com/v1"


def python_code(provider: Provider, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    lines = ["import os", ""]
    if provider.kind == "azure":
        lines += ["from openai import AzureOpenAI", "",
                  "client = AzureOpenAI(", '    api_key=os.environ["AZURE_OPENAI_API_KEY"],',
                  f"    azure_endpoint={provider.base_url!r},", f"    api_version={provider.api_version!r},", ")"]
    else:
        lines += ["from openai import OpenAI", "", "client = OpenAI("]
        lines.append('    api_key=os.environ["OPENAI_API_KEY"],')
        if provider.base_url:
            lines.append(f"    base_url={provider.base_url!r},")
        lines.append(")")
    lines += ["", "response = client.chat.completions.create(", f"    model={model!r},"]
    body = {"messages": messages, **params}
    for key, value in body.items():
        rendered = pprint.pformat(value, indent=4, width=100, sort_dicts=False).replace("\n", "\n    ")
        lines.append(f"    {key}={rendered},")
    lines += [")", "", "print(response.choices[0].message)"]
    code = "\n".join(lines)
    if provider.kind == "local":
        code = ("# The offline model is PromptLab's own llama.cpp server (a child process on a private port);\n"
                "# this is the same request for any OpenAI-compatible server (e.g. llama.cpp's\n"
                "# `llama-server -m <the GGUF>`, then set OPENAI_BASE_URL).\n") + code
    return code


def curl_command(provider: Provider, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    body = json.dumps({"model": model, "messages": messages, **params}, indent=2, ensure_ascii=False)
    body = body.replace("'", "'\\''")  # inside single quotes for the shell
    if provider.kind == "azure":
        url = (f"{(provider.base_url or '').rstrip('/')}/openai/deployments/{model}/chat/completions"
               f"?api-version={provider.api_version}")
        auth = '-H "api-key: $AZURE_OPENAI_API_KEY"'
    else:
        url = f"{(provider.base_url or OPENAI_URL).rstrip('/')}/chat/completions"
        auth = '-H "Authorization: Bearer $OPENAI_API_KEY"'
    return f"curl {url} \\\n  -H \"Content-Type: application/json\" \\\n  {auth} \\\n  -d '{body}'"
