"""Evals in promptfoo's format: config, assertions, the run (run), results and statistics (results, stats), test
sets and stored runs (store). Runs its cells on core.playground's matrix, the one feature it imports."""
