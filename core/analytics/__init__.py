"""The Analytics feature: filters, the DuckDB mirror of one SQLite node and dashboards (dashboard), the same answered
by PostgreSQL's roll-ups for many replicas (pushdown), Plotly figures (charts), the bill against the log
(reconcile), what-if costs (whatif). Imports the layers below, no other feature."""
