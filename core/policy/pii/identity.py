"""Identity numbers: national ids with a check (`python-stdnum`: Chinese resident id, US SSN, Brazilian CPF, Indian
Aadhaar and PAN, Spanish DNI / NIE), UK National Insurance numbers (their letter rules), and passport numbers, which
have no check and are recognised only next to a word for passport."""
from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType

from stdnum.br import cpf
from stdnum.cn import ric
from stdnum.es import dni, nie
from stdnum.exceptions import ValidationError
from stdnum.in_ import aadhaar, pan
from stdnum.us import ssn

from core.policy.pii.base import Recogniser, Text, pattern

_B, _E = r"(?<![A-Za-z0-9])", r"(?![A-Za-z0-9])"


def _valid(module: ModuleType) -> Callable[[re.Match[str], Text], bool]:
    """The match passes a python-stdnum module's own check."""
    return lambda m, t: bool(module.is_valid(m.group(0)))


# Bare nine digits are an SSN only after the word; written 123-45-6789 the format says it.
_SSN_CUE = re.compile(r"(?i)(?:ssn|social security(?: number| no\.?)?)[\s:#]*$")


def _ssn(m: re.Match[str], text: Text) -> bool:
    if "-" not in m.group(0) and not _SSN_CUE.search(text.before(m.start(), 30)):
        return False
    return ssn.is_valid(m.group(0).replace(" ", "-"))


_NINO_BAD_PREFIX = {"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"}


def _nino(m: re.Match[str], text: Text) -> bool:
    return m.group(0)[:2] not in _NINO_BAD_PREFIX


_AADHAAR_CUE = re.compile(r"(?i)(?:aadhaa?r|आधार|uid)[\s:#number.no]*$")


def _aadhaar(m: re.Match[str], text: Text) -> bool:
    if " " not in m.group(0) and "-" not in m.group(0) and not _AADHAAR_CUE.search(text.before(m.start(), 30)):
        return False
    return aadhaar.is_valid(m.group(0))


def _cpf(m: re.Match[str], text: Text) -> bool:
    if "." not in m.group(0) and not re.search(r"(?i)cpf[\s:#nº°.]*$", text.before(m.start(), 20)):
        return False
    return cpf.is_valid(m.group(0))


def _spanish(m: re.Match[str], text: Text) -> bool:
    value = m.group(0)
    return (nie if value[0] in "XYZxyz" else dni).is_valid(value)


_PASSPORT = re.compile(
    r"(?i)(?:passport|passeport|reisepass|pasaporte|passaporte|passaporto|paspoort|паспорт|护照|護照|旅券|パスポート|여권)"
    r"(?:\s*(?:number|numbers|num\.?|no\.?|nr\.?|nº|n°|#|numéro|número|nummer|numero|号码|號碼|号|號|番号|번호))?"
    r"(?:\s*(?:is|was|:|：|=|-|est|es|é|ist|是|为|為|は))*\s*"
    r"([A-Z0-9]{6,10})(?![A-Za-z0-9])")


def _passport(m: re.Match[str], text: Text) -> bool:
    value = m.group(1)
    digits = sum(c.isdigit() for c in value)
    # a passport number has digits and is written in capitals; a year or a word after the cue ("passport 2031",
    # "passport expired") is not one
    return digits >= 2 and value == value.upper() and (not value.isdigit() or digits >= 7)


_PROVINCES = {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54,
              61, 62, 63, 64, 65, 71, 81, 82, 83, 91}


def _ric(m: re.Match[str], text: Text) -> bool:
    """Province, birth date and check digit. Not python-stdnum's full check, which also wants the county code in
    its table for the birth year: an id is personal data whatever the county's history."""
    value = m.group(0).upper()
    if int(value[:2]) not in _PROVINCES or value[-1] != ric.calc_check_digit(value):
        return False
    try:
        ric.get_birth_date(value)
        return True
    except ValidationError:
        return False


RECOGNISERS = [
    Recogniser("id", "Chinese resident id numbers", "18 characters: a province code, a real birth date, sequence, "
               "ISO 7064 check digit (0–9 or X)", "11010519491231002X",
               pattern(re.compile(_B + r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
                                  + _E), _ric)),
    Recogniser("id", "US Social Security numbers", "123-45-6789 with valid area / group / serial (not 000, 666, 9xx, "
               "advertised numbers); nine bare digits only after “SSN”", "536-22-8726",
               pattern(re.compile(_B + r"\d{3}([\- ]?)\d{2}\1\d{4}" + _E), _ssn)),
    Recogniser("id", "UK National Insurance numbers", "two letters (HMRC's rules), six digits, A–D; spaced or not",
               "JG 10 38 46 D",
               pattern(re.compile(r"(?<![A-Za-z0-9])[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]"
                                  r"(?![A-Za-z0-9])"), _nino)),
    Recogniser("id", "Brazilian CPF", "000.000.000-00 with both check digits; eleven bare digits only after “CPF”",
               "397.780.223-21", pattern(re.compile(_B + r"\d{3}\.?\d{3}\.?\d{3}-?\d{2}" + _E), _cpf)),
    Recogniser("id", "Indian Aadhaar numbers", "12 digits (first 2–9), Verhoeff-checked, grouped 4-4-4; bare only "
               "after “Aadhaar”", "6188 1101 9881",
               pattern(re.compile(_B + r"[2-9]\d{3}([ \-]?)\d{4}\1\d{4}" + _E), _aadhaar)),
    Recogniser("id", "Indian PAN", "AAAPA9999A: five letters (the fourth the holder type), four digits, a letter",
               "ABCPK1234F", pattern(re.compile(_B + r"[A-Z]{3}[ABCFGHJLPT][A-Z]\d{4}[A-Z]" + _E), _valid(pan))),
    Recogniser("id", "Spanish DNI / NIE", "8 digits + check letter, or X/Y/Z + 7 digits + check letter",
               "12345678Z, X1234567L",
               pattern(re.compile(_B + r"(?:\d{8}|[XYZ]\d{7})-?[A-Z]" + _E), _spanish)),
    Recogniser("passport", "Passport numbers", "6–10 capitals and digits (at least two digits) right after a word for "
               "passport (passport no., passeport, Reisepass, pasaporte, passaporte, 护照, 旅券 …); without that word a "
               "passport number cannot be told from an order number, so it is not found",
               "passport no. PAA123456, 护照号码：E12345678",
               pattern(_PASSPORT, _passport, 1, needles=("pass", "pasap", "paspo", "паспорт", "护照", "護照", "旅券",
                                                         "パスポート", "여권"))),
]
