"""One replica's share of the shared-rate-limit tests: N chat calls through the gate, one after the other, against
the loopback server; prints what happened as JSON (statuses, the waits the gate reported, each call's request id,
reply and call-log sentence), once the writes the database refused meanwhile have been retried.

    python -m tests.calls.rate_limit_worker DB_URL BASE_URL N [TAG]
"""
from __future__ import annotations

import json
import sys
import time

from core.calls.gate import CallContext, CallHooks, ChatRequest, ChatStream
from core.calls.log import CallLog
from core.calls.pending_writes import PENDING
from core.llm.providers import Provider
from tests.conftest import TEST_KEY

PENDING_WAIT_S = 120  # a database that was away: its pending writes land within a few retries


def main(db_url: str, base_url: str, n: int, tag: str = "") -> None:
    log = CallLog(db_url)
    provider = Provider("compatible", base_url, TEST_KEY, timeout_s=20, max_retries=0)
    # Warm, as a replica that has run a while is: the SDK client and its connection (a /v1/models request, which
    # no limit counts), the database connection. A cold first call reaches the server up to ~1 s after its slot.
    provider.client().models.list()
    log.count()
    statuses, waits, ids, replies, log_errors = [], [], [], [], []
    for i in range(n):
        shown: list[float] = []
        stream = ChatStream(provider, ChatRequest("gpt-4o-mini", [{"role": "user", "content": f"{tag}hi {i}"}],
                                                  {"max_tokens": 5}),
                            CallContext(page="chat", user="replica", session="s", tags=[]), log,
                            hooks=CallHooks(on_rate_limit=shown.append))
        replies.append("".join(stream))
        assert stream.outcome is not None
        statuses.append(stream.outcome.status)
        ids.append(stream.request_id)
        log_errors.append(stream.outcome.log_error)
        waits.extend(shown)
    deadline = time.monotonic() + PENDING_WAIT_S  # this process's writes die with it: let them land first
    while PENDING.count() and time.monotonic() < deadline:
        time.sleep(0.2)
    print(json.dumps({"statuses": statuses, "waits": waits, "request_ids": ids, "replies": replies,
                      "log_errors": log_errors, "pending_left": PENDING.count(), "given_up": PENDING.given_up}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5])
