"""Contact details: e-mail addresses (full-width forms too), phone numbers (validated per country by Google's
libphonenumber, through `phonenumbers`) and IP addresses (validated, version numbers told apart)."""
from __future__ import annotations

import ipaddress
import re

import phonenumbers
from phonenumbers import PhoneNumberType

from core.policy.pii.base import Recogniser, Spans, Text, pattern

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"
                    r"(?![A-Za-z0-9\-])")

# ---------------------------------------------------------------- phones
# A candidate: an optional +CC (or 00CC), an optional "(0)" or "(area)", then digit groups joined by one separator
# (space, - . /, or " - "). Lookarounds use ASCII classes: Chinese text has no spaces and CJK counts as \w.
_PHONE = re.compile(r"""
    (?<![A-Za-z0-9+_/.\-@#&=])
    (?:(?:\+|00)\d{1,3}[ \-.]?(?:\(0\)[ \-.]?)?)?
    (?:\(\d{1,5}\)[ \-.]?)?
    \d{1,6}(?:(?:[ \-./]|\x20-\x20)?\d{1,6}){1,6}
    (?![A-Za-z0-9_]|[.\-/:,]\d)""", re.X)
_DATED_ID = re.compile(r"(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\D")
_DATE = re.compile(r"\d{4}([\-./])\d{1,2}\1\d{1,2}|\d{1,2}([\-./])\d{1,2}\2\d{2,4}")
# Regions a national number (no +CC) is tried in: the countries PromptLab's users write from, and the biggest
# numbering plans. A number valid in none of them is not a phone number for this purpose.
REGIONS = ("US", "GB", "FR", "DE", "BR", "CN", "JP", "IN", "ES", "IT", "NL", "MX", "CA", "AU", "KR", "PT", "BE", "CH",
           "AT", "PL", "SE", "IE", "SG", "HK", "TW", "RU", "TR", "AR", "ZA", "NG")
_PHONE_CUE = re.compile(r"(?i)(?:phone|tel\b|tel\.|telephone|mobile|cell|call|ring|text me|sms|whats ?app|wechat|fax"
                        r"|hotline|contact|reach|dial|电话|手机|号码|联系|致电|热线|微信|座机|téléphone|tél|portable"
                        r"|appel|telefon|handy|móvil|movil|teléfono|llam|celular|telefone|liga|電話|携帯|☎|📞)")
_NOT_PHONE_CUE = re.compile(r"(?i)(?:order|invoice|ticket|ref\b|reference|tracking|sku|batch|lot\b|build|version"
                            r"|isbn|issn|account|acct|id\b|no\.|#|订单|单号|编号|批次|版本|账号|page|pp?\.|chapter|serial"
                            r"|case|item|model|part|lote|pedido|factura|referencia|commande|facture|bestellung|rechnung)[\s:：#.]*$")


def _isbn(digits: str) -> bool:
    if len(digits) == 13 and digits[:3] in ("978", "979"):
        return sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits)) % 10 == 0
    return False


def _valid_phone(candidate: str, digits: str) -> bool:
    """Valid (libphonenumber) as written: a +CC number in its country; a national number in one of REGIONS with its
    trunk prefix where that country writes one ("01234 567890" in the UK, not "1234 567890"; a mobile may drop it,
    as Indian mobiles usually do)."""
    if candidate.startswith(("+", "00")):
        regions: tuple[str | None, ...] = (None,) if candidate.startswith("+") else ("GB",)
    else:
        regions = REGIONS
    for region in regions:
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            continue
        if not phonenumbers.is_valid_number(number):
            continue
        if region is None or region == "GB" and candidate.startswith("00"):
            return True
        national = re.sub(r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = (metadata.national_prefix if metadata else None) or ""
        if digits in (national, prefix + national):
            return True
        if prefix and national.startswith(prefix) and digits == national[len(prefix):] and \
                phonenumbers.number_type(number) in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
            return True
    return False


def find_phones(text: Text) -> Spans:
    for m in _PHONE.finditer(text.norm):
        cand = m.group(0)
        digits = re.sub(r"\D", "", cand)
        international = cand.startswith(("+", "00"))
        if not (7 if international else 8) <= len(digits) <= 15 or _DATE.fullmatch(cand) or _isbn(digits):
            continue
        before = text.before(m.start(), 30)
        formatted = cand != digits
        cued = bool(_PHONE_CUE.search(before))
        if not international and _NOT_PHONE_CUE.search(before) and not cued:
            continue  # order 4521-8839-12, build 10.0.19045.3803, ISBN …
        # A bare run of digits is a phone number only with a phone word before it, or as a mainland-China mobile
        # (written unformatted as a rule); otherwise ids, timestamps and amounts would be taken for phones.
        if not (international or formatted or cued or re.fullmatch(r"1[3-9]\d{9}", digits)):
            continue
        groups = [len(g) for g in re.findall(r"\d+", cand)]
        if _DATED_ID.match(cand):
            continue  # 20261126-07: a batch or order number that starts with a date

        if not international and (min(groups[1:], default=2) < 2 or len(groups) >= 4 and set(groups) == {2}
                                  and not digits.startswith("0")):
            # 120.0.6099.109 is a version; pairs ("06 12 34 56 78") are how France, Belgium or Morocco write a
            # number, always with its leading 0 — "12 34 56 78 90" is a row of scores
            continue
        if _valid_phone(cand, digits):
            yield m.span()


# ---------------------------------------------------------------- IP addresses
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]:)(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?"
                   r"(?![:0-9A-Za-z])")
_VERSION_CUE = re.compile(r"(?i)(?:version|ver\.?|release|releases|build|upgrade[ds]?(?: to)?|update[ds]?(?: to)?"
                          r"|downgrade[ds]?(?: to)?|install(?:ed)?|patch|firmware|driver|sdk|\bv|==|>=|<=|~=|-"
                          r"|section|chapter|§|clause|step|figure|table|rule|版本号?|升级到?|更新到?|versión|versão)"
                          r"[\s:=：]*$")
_IP_CUE = re.compile(r"(?i)(?:\bip\b|address|host|server|subnet|network|route|gateway|dns|from|ssh|ping|connect|"
                     r"login|whitelist|allowlist|block|地址|来源|服务器|网关)")


def _ipv4(m: re.Match[str], text: Text) -> bool:
    try:
        ipaddress.IPv4Address(m.group(0))
    except ValueError:
        return False
    before = text.before(m.start(), 30)
    if _VERSION_CUE.search(before):
        return False
    # x.y.z.0 or 0.x.y.z is a network, a bind address or, mostly, a version number (2.10.1.0): only with an IP word.
    octets = m.group(0).split(".")
    if (octets[-1] == "0" or octets[0] == "0") and not _IP_CUE.search(before) \
            and not re.match(r"/\d", text.after(m.end(), 3)):
        return False
    return True


def _find_ipv6(text: Text) -> Spans:
    for m in _IPV6_CANDIDATE.finditer(text.norm):
        start, value = m.start(), m.group(0)
        if value.startswith(":") and not value.startswith("::"):
            start, value = start + 1, value[1:]  # "地址：fe80::1" — the full-width colon became ":" in NFKC
        if _ipv6(value):
            yield start, m.end()


def _ipv6(value: str) -> bool:
    if not re.search(r"[0-9A-Fa-f]", value):
        return False  # "::" alone
    if value.count(":") < 2 or re.fullmatch(r"[\d:]+", value) and "::" not in value:
        return False  # 10:45:30 is a time
    try:
        ipaddress.IPv6Address(value)
        return True
    except ValueError:
        return False


RECOGNISERS = [
    Recogniser("email", "E-mail addresses", "local@domain.tld; full-width forms (`ａｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ`, `＠`, `．`) "
               "are matched through NFKC and the original characters redacted", "ana.garcia@example.com",
               pattern(_EMAIL)),
    Recogniser("phone", "Phone numbers", "+CC numbers, and national numbers valid (libphonenumber) in one of "
               f"{len(REGIONS)} countries ({', '.join(REGIONS[:9])}, …) written with the usual grouping; a bare run "
               "of digits only after a phone word (tel, call, 电话, 手机 …) or as a Chinese mobile (13912345678)",
               "06 12 34 56 78, (11) 91234-5678, +49 (0)30 901820, 03-3456-7890", find_phones),
    Recogniser("ip", "IP addresses", "IPv4 and IPv6, validated; not after a version word (version, v, release, "
               "==, 版本 …), and `x.y.z.0` only with an IP word (ip, host, server, from …)",
               "203.0.113.45, 2001:db8::1", lambda t: (s for r in (pattern(_IPV4, _ipv4), _find_ipv6) for s in r(t))),
]
