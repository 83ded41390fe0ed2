"""One replica's share of the shared-rate-limit test: N chat calls through the gate, one after the other, against
the loopback server; prints what happened as JSON (statuses, the waits the gate reported).

    python -m tests.calls.rate_limit_worker DB_URL BASE_URL N
"""
from __future__ import annotations

import json
import sys

from core.calls.gate import CallContext, CallHooks, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.llm.providers import Provider
from tests.conftest import TEST_KEY


def main(db_url: str, base_url: str, n: int) -> None:
    log = CallLog(db_url)
    provider = Provider("compatible", base_url, TEST_KEY, timeout_s=20, max_retries=0)
    # Warm, as a replica that has run a while is: the SDK client and its connection (a /v1/models request, which
    # no limit counts), the database connection. A cold first call reaches the server up to ~1 s after its slot.
    provider.client().models.list()
    log.count()
    statuses, waits = [], []
    for i in range(n):
        shown: list[float] = []
        stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": f"hi {i}"}],
                                                  {"max_tokens": 5}),
                            CallContext(page="chat", user="replica", session="s", tags=[]), log,
                            hooks=CallHooks(on_rate_limit=shown.append))
        list(stream)
        assert stream.outcome is not None
        statuses.append(stream.outcome.status)
        waits.extend(shown)
    print(json.dumps({"statuses": statuses, "waits": waits}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
