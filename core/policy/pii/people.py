"""People and places: personal names (English: after a title or an introducing phrase, or a known given name and a
capitalised surname; Chinese: a surname and given-name characters next to a cue) and street addresses (UK with a
postcode, US with a state and ZIP, Chinese 省/市/区/路/号). No language model: word lists and context."""
from __future__ import annotations

import re

from core.policy.pii.base import Recogniser, Spans, Text
from core.policy.pii.name_lists import (
    FIRST_NAMES,
    NOT_NAME_WORDS,
    PLACE_OR_MONTH_WORDS,
    ZH_COMPOUND_SURNAMES,
    ZH_GIVEN,
    ZH_SURNAMES,
)

# ---------------------------------------------------------------- English names
_CAP = r"(?:(?:O'|O’|Mc|Mac|D'|Al-|El-)?[A-Z][a-zà-ÿ]+(?:-[A-Z]?[a-zà-ÿ]+|['’][A-Z][a-zà-ÿ]+)?)"
_PARTICLE = r"(?:(?:van|von|de|da|di|du|del|der|den|la|le|bin|al|dos|das)\s+)"
_FULL = rf"{_CAP}(?:\s+{_PARTICLE}?{_CAP}){{1,2}}"
_TITLE = re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Professor|Sir|Dame|Lady|Lord|Rev|Herr|Frau|Mme|Mlle|Sr|Sra|Srta"
                    rf"|Señor|Señora|Madame|Monsieur)\.?\s+({_CAP}(?:\s+{_PARTICLE}?{_CAP}){{0,2}})")
# An introducing phrase, then a capitalised first and last name. The phrases are looked for only before a run of
# capitalised words (cheaper than trying every phrase at every character); a run may begin with one ("Dear …").
_RUN = re.compile(rf"(?<![A-Za-zà-ÿ'’\-]){_CAP}(?:[ \t]+{_PARTICLE}?{_CAP}){{1,4}}")
_WORDS = re.compile(r"\S+")
_CUE_BEFORE = re.compile(
    r"(?i:\b(?:my name is|my name's|name\s*:|full name\s*:|i am|i'm|this is|customer\s*:|client\s*:|patient\s*:"
    r"|contact\s*:|attn\.?:?|attention\s*:|passenger\s*:|traveller\s*:|traveler\s*:|employee\s*:|from\s*:|to\s*:"
    r"|cc\s*:|signed\s*:?|dear|hi|hello|hey|regards,?|best,|thanks,|thank you,|cheers,|sincerely,?|yours,?"
    r"|spoke with|spoke to|talked to|talk to|ask|tell|met|meet|called|named|ship to\s*:?|deliver to\s*:?"
    r"|recipient\s*:|holder\s*:|by))\s+$")
_CUE_FIRST = {"dear", "hi", "hello", "hey", "regards", "thanks", "cheers", "sincerely", "signed", "attn", "ask", "tell",
              "meet", "met", "contact", "customer", "client", "patient", "passenger", "traveller", "traveler", "recipient"}
# Overlapping (a lookahead), so that "Can Michael Brown" is tried at "Michael" too.
_KNOWN = re.compile(rf"\b(?=([A-Z][a-zà-ÿ]+)((?:\s+[A-Z]\.)?\s+{_PARTICLE}?{_CAP})\b)")


def _surname_ok(words: list[str], strict: bool = False) -> bool:
    return all(w not in NOT_NAME_WORDS and not (strict and w in PLACE_OR_MONTH_WORDS) for w in words)


def _introduced(t: str, run: re.Match[str]) -> tuple[int, int] | None:
    words = [(w.group(), run.start() + w.start(), run.start() + w.end()) for w in _WORDS.finditer(run.group())]
    if words[0][0].lower().rstrip(",:") in _CUE_FIRST:
        words = words[1:]
    elif not _CUE_BEFORE.search(t, max(0, run.start() - 30), run.start()):
        return None
    words = words[:3]
    # a trailing capitalised word that is not part of the name ("… Holloway From accounts") is left out
    while len(words) > 2 and words[-1][0] in NOT_NAME_WORDS:
        words.pop()
    if len(words) < 2 or not _surname_ok([w for w, _, _ in words[:2]]):
        return None
    return words[0][1], words[-1][2]


def find_en_names(text: Text) -> Spans:
    t = text.norm
    for m in _TITLE.finditer(t):
        if _surname_ok(m.group(1).split()):
            yield m.span(1)
    for m in _RUN.finditer(t):
        if span := _introduced(t, m):
            yield span
    for m in _KNOWN.finditer(t):
        if m.group(1) in FIRST_NAMES and _surname_ok(m.group(2).split(), strict=True):
            yield m.start(1), m.end(2)


# ---------------------------------------------------------------- Chinese names
_HAN = "\u4e00-\u9fff"
_SURNAME = "(?:" + "|".join(ZH_COMPOUND_SURNAMES) + "|[" + "".join(sorted(ZH_SURNAMES)) + "])"
_GIVEN = "[" + "".join(sorted(ZH_GIVEN)) + "]"
# A strong cue (我叫, 联系人：, 先生 …) says a name is there: the given name may be any one or two Han characters.
# A weak cue (是, 和, 请, 客户, 明天 …) needs the given name to be made of characters common in given names.
_ZH_STRONG_BEFORE = r"(?:我叫|名叫|叫做|姓名[:：]?\s*|联系人[:：]?\s*|收件人[:：]?\s*|寄件人[:：]?\s*|收货人[:：]?\s*|发件人[:：]?\s*|尊敬的|亲爱的)"
_ZH_WEAK_BEFORE = (r"(?:我是|客户|乘客|患者|病人|学生|员工|同事|经理|主管|老师|转告|告诉|通知|找|联系|致|这是|是|和|与|跟|给|由|请|让|问"
                   r"|@)")
_ZH_STRONG_AFTER = r"(?:先生|女士|小姐|老师|经理|总监|医生|大夫|同学|师傅|教授|主任|阿姨|叔叔|律师|工程师|院长|校长)"
_ZH_WEAK_AFTER = r"(?:总|的|说|明天|今天|昨天|会|已经|反映|表示|来|去|发|把|负责|打电话|电话|手机|邮箱|您好|你好)"
_ZH_END = r"(?:[，,。！!？?：:、；;\s]|$)"
_ANY = rf"(?:(?![的了在是和与说会把要去来到给也都就还很这那们吗呢吧啊个对从被让向为已你我他她它])[{_HAN}])"
_SURNAME_RE = re.compile(_SURNAME)
_HAS_HAN = re.compile(f"[{_HAN}]")
_AFTER = rf"(?={_ZH_STRONG_AFTER}|{_ZH_WEAK_AFTER}|{_ZH_END})"
# (cue that ends just before the surname, what the given name may be and what must follow it)
_ZH_RULES = (
    (re.compile(_ZH_STRONG_BEFORE + "$"), re.compile(rf"{_ANY}{{1,2}}?{_AFTER}")),
    (re.compile(_ZH_WEAK_BEFORE + "$"), re.compile(rf"{_GIVEN}{{1,2}}{_AFTER}")),
    (re.compile(""), re.compile(rf"{_ANY}{{1,2}}?(?={_ZH_STRONG_AFTER})")),
    # at the start of a sentence only before a verb of saying or a day ("成功的调用" is "successful calls")
    (re.compile(r"(?:^|[。！？!?\n，,：:；;\s])$"), re.compile(rf"{_GIVEN}{{1,2}}(?=明天|今天|昨天|已经|反映|表示|负责|说)")),
)


def find_zh_names(text: Text) -> Spans:
    t = text.norm
    if not _HAS_HAN.search(t):
        return
    taken = 0
    for m in _SURNAME_RE.finditer(t):
        if m.start() < taken:
            continue
        for cue, given in _ZH_RULES:
            if cue.search(t, max(0, m.start() - 6), m.start()) and (g := given.match(t, m.end())):
                yield m.start(), g.end()
                taken = g.end()
                break


# ---------------------------------------------------------------- addresses
_UK_POSTCODE = r"(?:[A-Z]{1,2}\d[A-Z\d]?|GIR)\s?\d[ABD-HJLNP-UW-Z]{2}"
_US_STATES = ("AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
              "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY PR").split()
_US_ZIP = r"(?:" + "|".join(_US_STATES) + r")\s+\d{5}(?:-\d{4})?"
_SUFFIX = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Close|Crescent"
           r"|Terrace|Square|Sq|Grove|Gardens|Row|Hill|Walk|Parkway|Pkwy|Highway|Hwy|Mews|Circle|Cir|Trail|Loop|Broadway"
           r"|Kingsway|Deansgate|Green|Park|Rise|View|Wharf|Yard)")
_WORD = r"(?:[A-Z][A-Za-z'’.\-]*|\d+(?:st|nd|rd|th))"
_UNIT = r"(?:(?:Flat|Unit|Apartment|Apt|Suite|Ste|Room|Floor)\.?\s*#?[\w\-]+,?\s+)"
_STREET = rf"{_UNIT}?\d{{1,5}}[A-Za-z]?,?\s+(?:{_WORD}\s+){{0,3}}{_SUFFIX}\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?"
_TOWN = rf"(?:,?\s+(?:(?:Flat|Unit|Apartment|Apt|Suite|Ste|Room|Floor)\.?\s*#?[\w\-]+|{_WORD}(?:\s+{_WORD}){{0,2}}))"
_EN_ADDRESS = re.compile(
    rf"(?<![A-Za-z0-9])(?:{_STREET}(?:{_TOWN}{{0,3}},?\s+(?:{_UK_POSTCODE}|{_US_ZIP}))?"
    rf"|{_UNIT}?\d{{1,5}}[A-Za-z]?\s+{_WORD}(?:\s+{_WORD}){{0,3}}(?:,\s*{_WORD}(?:\s+{_WORD}){{0,2}}){{1,3}},?\s+(?:{_UK_POSTCODE}|{_US_ZIP}))"
    rf"(?![A-Za-z0-9])")
# A postcode on its own narrows a person down to a few houses; "M3 8GB" is a laptop, not Manchester.
# "#AB63FA" is a colour.
_POSTCODE_ALONE = re.compile(rf"(?<![A-Za-z0-9#])(?:{_UK_POSTCODE})(?<![GMKT]B)(?![A-Za-z0-9])")

_PROVINCE = (r"(?:(?:北京|天津|上海|重庆)市?|(?:河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州"
             r"|云南|陕西|甘肃|青海|台湾)省|(?:内蒙古|广西|西藏|宁夏|新疆)(?:自治区|壮族自治区|回族自治区|维吾尔自治区)?|香港|澳门)")
# The characters a place name is made of: Han characters, minus the ones that begin or end a sentence around an
# address ("我住在", "请寄到", "地址是") so that they are not taken into it.
_PLACE = rf"(?:(?![在到是我你他她请寄住址为于从的了给往])[{_HAN}])"
_ZH_ADDRESS = re.compile(
    rf"{_PROVINCE}?(?:{_PLACE}{{1,6}}?(?:市|州|盟))?(?:{_PLACE}{{1,6}}?(?:区|县|旗))?(?:{_PLACE}{{1,8}}?(?:镇|乡|街道))?"
    rf"{_PLACE}{{1,10}}?(?:路|街|大道|大街|巷|弄|胡同|道)(?:[一二三四五六七八九十\d]+段)?\d{{1,5}}(?:-\d{{1,4}})?[号號]"
    rf"(?:[{_HAN}A-Za-z\d\-]{{0,12}}?(?:楼|层|室|座|栋|幢|单元|号楼|大厦|中心|广场|园)[A-Za-z\d\-]{{0,6}})*")


_ZH_ROAD_NUMBER = re.compile(r"(?:路|街|大道|巷|弄|胡同|道)(?:[一二三四五六七八九十\d]+段)?\d{1,5}(?:-\d{1,4})?[号號]")


def find_addresses(text: Text) -> Spans:
    t = text.norm
    for m in _EN_ADDRESS.finditer(t):
        yield m.span()
    for m in _POSTCODE_ALONE.finditer(t):
        yield m.span()
    # The full pattern is tried only around a road and house number (路 … 号), the one part every address has.
    for anchor in _ZH_ROAD_NUMBER.finditer(t):
        for m in _ZH_ADDRESS.finditer(t, max(0, anchor.start() - 40), anchor.end() + 40):
            if m.start() < anchor.end() and anchor.start() < m.end():
                yield m.span()


RECOGNISERS = [
    Recogniser("address", "Street addresses", "English: a house number, street name and street type (Street, Road, "
               "Ave …) with the town and a UK postcode or a US state and ZIP when they follow, or a number, street and "
               "town ending in a postcode / ZIP, and a UK postcode on its own; Chinese: 省 / 市 / 区 / 县 / 镇, a 路 / 街 / "
               "大道 / 巷 with a 号, and the 楼 / 室 / 单元 after it", "221B Baker Street, London NW1 6XE; "
               "浙江省杭州市西湖区文三路478号华星大厦5楼", find_addresses),
    Recogniser("name", "Personal names", "English: a first and last name after a title (Mr, Dr …) or an introducing "
               "phrase (my name is, Dear, regards, spoke with …), or a common given name (a list of ~700, many "
               "cultures) and a capitalised surname; Chinese: a surname (~260, with 欧阳 …) and one or two given-name "
               "characters after a cue (我叫, 联系人：, 收件人：, 客户 …) or before one (先生, 女士, 老师, 明天 …)",
               "My name is Margaret Holloway; 联系人：李建华", lambda t: (s for f in (find_en_names, find_zh_names)
                                                                      for s in f(t))),
]
