""""View code": the exact request of a playground configuration as Python (openai SDK) and as curl.
The key is always read from the environment, never written into the code; an image or PDF variable shows as
a short placeholder for its data URI (type, size, digest), never megabytes of base64.
"""
from __future__ import annotations

import json
import pprint
from typing import Any

from core.llm.attachments import without_inline_data
from core.llm.providers import Provider
from core.llm.responses_api import responses_request

OPENAI_URL = "https://api.openai.com/v1"


def python_code(provider: Provider, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                api: str = "chat") -> str:
    """The request as Python; `api` "responses" writes `client.responses.create` with the Responses shapes."""
    messages = without_inline_data(messages)
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
    if api == "responses":
        body = responses_request(model, messages, params)
        del body["model"]
        lines += ["", "response = client.responses.create(", f"    model={model!r},"]
    else:
        body = {"messages": messages, **params}
        lines += ["", "response = client.chat.completions.create(", f"    model={model!r},"]
    for key, value in body.items():
        rendered = pprint.pformat(value, indent=4, width=100, sort_dicts=False).replace("\n", "\n    ")
        lines.append(f"    {key}={rendered},")
    lines += [")", "", "print(response.output_text)" if api == "responses" else "print(response.choices[0].message)"]
    code = "\n".join(lines)
    if provider.kind == "local":
        code = ("# The offline model is PromptLab's own llama.cpp server (a child process on a private port);\n"
                "# this is the same request for any OpenAI-compatible server (e.g. llama.cpp's\n"
                "# `llama-server -m <the GGUF>`, then set OPENAI_BASE_URL).\n") + code
    return code


def curl_command(provider: Provider, model: str, messages: list[dict[str, Any]], params: dict[str, Any],
                 api: str = "chat") -> str:
    """The request as curl, to /responses when `api` is "responses" (Azure: its v1 path)."""
    messages = without_inline_data(messages)
    request = responses_request(model, messages, params) if api == "responses" else {
        "model": model, "messages": messages, **params}
    body = json.dumps(request, indent=2, ensure_ascii=False)
    body = body.replace("'", "'\\''")  # inside single quotes for the shell
    if provider.kind == "azure" and api == "responses":
        url = f"{(provider.base_url or '').rstrip('/')}/openai/v1/responses"
        auth = '-H "api-key: $AZURE_OPENAI_API_KEY"'
    elif provider.kind == "azure":
        url = (f"{(provider.base_url or '').rstrip('/')}/openai/deployments/{model}/chat/completions"
               f"?api-version={provider.api_version}")
        auth = '-H "api-key: $AZURE_OPENAI_API_KEY"'
    else:
        path = "responses" if api == "responses" else "chat/completions"
        url = f"{(provider.base_url or OPENAI_URL).rstrip('/')}/{path}"
        auth = '-H "Authorization: Bearer $OPENAI_API_KEY"'
    return f"curl {url} \\\n  -H \"Content-Type: application/json\" \\\n  {auth} \\\n  -d '{body}'"
