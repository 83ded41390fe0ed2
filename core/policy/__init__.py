"""Who may do what and what must not leave: the access gate (access), the audit log (audit), admin-only settings
(workspace), reachable URLs (url_policy), redaction (redaction, pii/). Imports only base and formats."""
