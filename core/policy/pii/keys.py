"""Secrets: vendor key formats (OpenAI, Anthropic, Hugging Face, GitHub, GitLab, AWS, SendGrid, Slack, Stripe,
Google, npm, PyPI), JWTs, `Authorization` credentials, private-key blocks, passwords in URLs and in `key = value`."""
from __future__ import annotations

import base64
import binascii
import re

from core.policy.pii.base import PLACEHOLDER, Recogniser, Text, mixed, pattern

_B = r"(?<![A-Za-z0-9_\-])"  # a key starts a token
_E = r"(?![A-Za-z0-9_\-])"   # and ends it


def _openai(m: re.Match[str], text: Text) -> bool:
    # `sk-proj-` / `sk-svcacct-` / `sk-admin-` are unambiguous; a bare `sk-` must look random, so that package names
    # such as sk-transformers-utils-extended (lower-case words and hyphens) stay.
    return bool(m.group(1)) or (mixed(m.group(2), digit=False) and any(c.isdigit() for c in m.group(2)))


def _entropy(m: re.Match[str], text: Text) -> bool:
    return mixed(m.group(0), digit=False)


def _digits_in(m: re.Match[str], text: Text) -> bool:
    return any(c.isdigit() for c in m.group(0))


_AWS_SECRET_CUE = re.compile(r"(?i)(?:secret|AKIA[A-Z0-9]{16}|ASIA[A-Z0-9]{16})")


def _aws_secret(m: re.Match[str], text: Text) -> bool:
    # 40 characters of base64 is also a SHA-1 in hex or a random id: only with "secret" (aws_secret_access_key,
    # SecretAccessKey, "secret access key") or an access key id shortly before, and never plain hex.
    value = m.group(0)
    if re.fullmatch(r"[0-9a-fA-F]{40}", value) or not mixed(value):
        return False
    return bool(_AWS_SECRET_CUE.search(text.before(m.start(), 120)))


def _bearer(m: re.Match[str], text: Text) -> bool:
    token = m.group(1)
    return any(c.isdigit() for c in token) or mixed(token, digit=False)


def _basic(m: re.Match[str], text: Text) -> bool:
    """`Basic` plus base64 of `user:password`, even without the header's name."""
    try:
        raw = base64.b64decode(m.group(1) + "=" * (-len(m.group(1)) % 4), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return ":" in raw and raw.isprintable()


def _not_placeholder(m: re.Match[str], text: Text) -> bool:
    """A value that is a credential: printable ASCII, not a placeholder, and not a word of prose ("密钥：请在设置中
    添加", "password: Required") — a word is letters only, in one case."""
    value = m.group(1).strip("\"'")
    if len(value) < 6 or not value.isascii() or not value.isprintable() or PLACEHOLDER.match(value) \
            or len(set(value)) <= 2:
        return False
    return not value.isalpha() or not (value.islower() or value.isupper() or value.istitle())


_ASSIGNED = re.compile(
    r"(?i)(?:pass(?:word|wd|phrase)?|pwd|secret|client[_-]?secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token"
    r"|refresh[_-]?token|private[_-]?key|token|密码|口令|密钥|contraseña|mot de passe|passwort)"
    r"[\"']?\s*(?:[:=]|=>|:=)\s*[\"']?([^\s\"',;]+)")

RECOGNISERS = [
    Recogniser("secret", "Anthropic API keys", "`sk-ant-api03-` (or `admin01`, `oat01`) and 20+ characters",
               "sk-ant-api03-Xy7Kp2…AA",
               pattern(re.compile(_B + r"sk-ant-[a-z]{3,5}\d{2}-[A-Za-z0-9_\-]{20,}"), needles=("sk-ant-",))),
    Recogniser("secret", "OpenAI API keys", "`sk-proj-`, `sk-svcacct-`, `sk-admin-` and 20+ characters; a bare `sk-` "
               "only when what follows mixes letters, capitals and digits", "sk-proj-4fJd8Kq2…",
               pattern(re.compile(_B + r"sk-(proj-|svcacct-|admin-|None-)?([A-Za-z0-9_\-]{20,})"), _openai,
                       needles=("sk-",))),
    Recogniser("secret", "Hugging Face tokens", "`hf_` and 30–40 letters and digits, mixed case", "hf_aBcDeFgH…",
               pattern(re.compile(_B + r"hf_[A-Za-z0-9]{30,40}" + _E), _entropy, needles=("hf_",))),
    Recogniser("secret", "GitHub tokens", "`github_pat_…` fine-grained tokens; `ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` "
               "and 36 characters", "github_pat_11ABC…, ghp_16C7e42F…",
               pattern(re.compile(_B + r"(?:github_pat_[A-Za-z0-9_]{50,}|gh[pousr]_[A-Za-z0-9]{36,})" + _E),
                       needles=("github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"))),
    Recogniser("secret", "GitLab tokens", "`glpat-` and 20 characters", "glpat-xY7…",
               pattern(re.compile(_B + r"glpat-[A-Za-z0-9_\-]{20,}"), _digits_in, needles=("glpat-",))),
    Recogniser("secret", "AWS access key ids", "`AKIA` / `ASIA` (and the other AWS prefixes) and 16 capitals or digits",
               "AKIAIOSFODNN7EXAMPLE",
               pattern(re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}"
                                  r"(?![A-Z0-9])"),
                       needles=("akia", "asia", "abia", "acca", "agpa", "aida", "aroa", "anpa", "anva", "aipa"))),
    Recogniser("secret", "AWS secret access keys", "40 characters of base64 (not hex) after `secret` "
               "(`aws_secret_access_key`, `SecretAccessKey`, “secret access key”) or after an access key id",
               "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/…",
               pattern(re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"), _aws_secret,
                       needles=("secret", "akia", "asia"))),
    Recogniser("secret", "SendGrid keys", "`SG.` + 16–32 + `.` + 30–50 characters", "SG.ngeVfQFY….TwL2iGAB…",
               pattern(re.compile(_B + r"SG\.[A-Za-z0-9_\-]{16,32}\.[A-Za-z0-9_\-]{30,50}" + _E), needles=("sg.",))),
    Recogniser("secret", "Slack tokens and webhooks", "`xoxb-`, `xoxp-`, `xoxa-`, `xoxe-`, `xoxr-`, `xoxs-`, `xapp-` "
               "tokens with digits; `hooks.slack.com/services/…` URLs", "xoxb-1234-5678-AbCd…",
               pattern(re.compile(r"(?<![A-Za-z0-9])(?:xox[abposre](?:\.xox[a-z])?-|xapp-)[A-Za-z0-9\-]{10,}"
                                  r"|https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9/_\-]{20,}"),
                       _digits_in, needles=("xox", "xapp-", "hooks.slack.com"))),
    Recogniser("secret", "Stripe keys", "`sk_live_`, `rk_live_`, `sk_test_`, `rk_test_`, `pk_live_`, `pk_test_`, "
               "`whsec_` and 16+ characters", "sk_live_51HxYz…",
               pattern(re.compile(r"(?<![A-Za-z0-9])(?:[srp]k_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})"),
                       needles=("k_live_", "k_test_", "whsec_"))),
    Recogniser("secret", "Google keys and tokens", "`AIza` + 35 characters; OAuth `GOCSPX-` secrets, `ya29.` tokens",
               "AIzaSyD-9tSrke72…",
               pattern(re.compile(_B + r"(?:AIza[0-9A-Za-z_\-]{35}|GOCSPX-[A-Za-z0-9_\-]{24,}|ya29\.[A-Za-z0-9_\-]{20,})"),
                       needles=("aiza", "gocspx-", "ya29."))),
    Recogniser("secret", "npm and PyPI tokens", "`npm_` + 36 characters; `pypi-AgEIcHlwaS5vcmc…`", "npm_a1B2…",
               pattern(re.compile(_B + r"(?:npm_[A-Za-z0-9]{36}|pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{40,})" + _E),
                       needles=("npm_", "pypi-"))),
    Recogniser("secret", "JSON Web Tokens", "three base64url parts, the first one `eyJ…` (a JSON header), bare or in a "
               "header", "eyJhbGciOi….eyJzdWIi….SflKxwRJ…",
               pattern(re.compile(_B + r"eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"), needles=("eyj",))),
    Recogniser("secret", "Authorization headers", "the credentials after `Authorization:` / `Proxy-Authorization:` "
               "(any scheme)", "Authorization: [SECRET]",
               pattern(re.compile(r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?((?:basic|bearer|token|digest"
                                  r"|negotiate|apikey)\s+[^\s\"',;]+|[^\s\"',;]{12,})"), _not_placeholder, 1,
                       needles=("authorization",))),
    Recogniser("secret", "API key headers", "the value of `X-API-Key:`, `Api-Key:`, `X-Auth-Token:`, "
               "`X-Access-Token:` (12+ characters)", "X-API-Key: [SECRET]",
               pattern(re.compile(r"(?i)\b(?:x-api-key|api-key|x-auth-token|x-access-token)[\"']?\s*:\s*[\"']?"
                                  r"([^\s\"',;]{12,})"), _not_placeholder, 1, needles=("api-key", "-token"))),
    Recogniser("secret", "Bearer tokens", "`Bearer` and 16+ token characters that include a digit or mix cases",
               "Bearer 8f3kLm2Q…", pattern(re.compile(r"(?<![A-Za-z])[Bb]earer\s+([A-Za-z0-9\-._~+/]{16,}=*)"), _bearer,
                                           needles=("bearer",))),
    Recogniser("secret", "Basic credentials", "`Basic` and base64 that decodes to `user:password`",
               "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
               pattern(re.compile(r"(?<![A-Za-z])[Bb]asic\s+([A-Za-z0-9+/]{6,}={0,2})(?![A-Za-z0-9+/=])"), _basic,
                       needles=("basic",))),
    Recogniser("secret", "Private keys", "`-----BEGIN … PRIVATE KEY-----` blocks (to their END line, or to the end of "
               "the base64 when cut off)", "-----BEGIN RSA PRIVATE KEY----- …",
               pattern(re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END [A-Z0-9 ]*PRIVATE "
                                  r"KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s]*)", re.S), needles=("private key",))),
    Recogniser("secret", "Passwords in URLs", "the password of `scheme://user:password@host`",
               "postgres://app:[SECRET]@db:5432/prod",
               pattern(re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://[^\s:/@]+:([^\s@/]+)@"), _not_placeholder, 1,
                       needles=("://",))),
    Recogniser("secret", "Passwords and keys assigned", "the value after `password`, `passwd`, `pwd`, `secret`, "
               "`api_key`, `token`, `client_secret`, `private_key`, `密码`, `口令`, `密钥`… and `=` or `:` (6+ characters; "
               "placeholders such as `YOUR_API_KEY`, `<token>`, `${X}`, `****`, `os.environ[…]` stay)",
               "password = \"[SECRET]\"",
               pattern(_ASSIGNED, _not_placeholder, 1, needles=("pass", "pwd", "secret", "key", "token", "密码", "口令",
                                                                 "密钥", "contraseña", "mot de passe"))),
]
