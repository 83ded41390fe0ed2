"""The Analytics feature: filters, the DuckDB mirror and dashboards (dashboard), Plotly figures (charts), the
bill against the log (reconcile), what-if costs (whatif). Imports the layers below, no other feature."""
