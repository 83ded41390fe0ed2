"""The one gate every model call passes (gate) and what surrounds a call: metrics, the call log (log), cache,
ratelimit, fallback, prometheus, pending_writes, chunks, repetition, moderation, interchange, synthetic."""
