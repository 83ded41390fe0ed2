"""Text in and out: the one CSV writer (exports), JSON and YAML read within limits (json_guard, parse_limits),
human table headers (columns), what the browser is given (rendering, cookies). Imports only core.base."""
