"""A labelled corpus for measuring redaction: positive snippets (each holding one PII item or secret) and negative
snippets (no PII, but numbers, dates, codes and addresses that look close), in English, Chinese and Spanish.
Built deterministically from a seed so the measurement is repeatable."""
from __future__ import annotations

import random
import string

from core.policy.redaction import luhn_ok

POSITIVE_TEMPLATES = {
    "en": ["Please contact me at {v} as soon as possible.", "My details: {v}", "You can reach our office on {v}.",
           "The customer wrote: refund to {v} please", "{v} is the one on file, can you check?"],
    "zh": ["请通过{v}联系我。", "我的信息是：{v}", "客户说退款请打到 {v} 谢谢", "{v} 是登记的那个，请核对。",
           "麻烦帮我查一下 {v}"],
    "es": ["Por favor, contácteme en {v} cuanto antes.", "Mis datos: {v}", "El cliente escribió: reembolso a {v}",
           "{v} es el que tenemos registrado, ¿puede revisarlo?", "Puede llamarnos al {v}."],
}
NEGATIVES = {
    "en": ["Order #A-20391 shipped on 2026-11-26 at 14:30.", "The total was $1,234.56 including 21% VAT.",
           "Version 3.14.2 fixes the login bug.", "Meet me at 10:45 in room 1402 on floor 14.",
           "ISBN 978-3-16-148410-0 is out of print.", "Tracking reference 4111 1111 1111 1112 is invalid.",
           "Use model gpt-4o-mini with temperature 0.7.", "Ping @ana in the channel about the demo.",
           "We sold 12,500 units in Q3 2026, up 8.5%.", "Invoice INV-2026-00042 is due in 30 days.",
           "The SKU-4411-2093 box weighs 2.5 kg.", "Write to us at support (at) example (dot) com.",
           "Batch 20261126-07 passed QA with 99.98% yield.", "The ratio was 3:2:1 across the three teams.",
           "IBAN check failed for DE00 3704 0044 0532 0130 00.", "Call center hours are 9-17, Monday to Friday.",
           "Coordinates 48.8566, 2.3522 mark the meeting point.", "Ticket 7788-12 was closed yesterday.",
           "Build 1024 took 3m 12s on runner 7.", "The sk-8 rollout starts next week."],
    "zh": ["订单编号：A20231126，已于2026年11月26日发货。", "价格：¥1,299.00，含税。", "会议在14:30，地点是1402会议室。",
           "版本 3.14.2 修复了登录问题。", "本季度销量为12,500台，增长8.5%。", "发票号 INV-2026-00042 三十天内到期。",
           "快递单号 SF20261126 正在派送。", "请在频道里 @小王 一下。", "批次 20261126-07 良率 99.98%。",
           "比例是3:2:1。", "工单 7788-12 昨天已关闭。", "温度设置为0.7，模型是 gpt-4o-mini。",
           "第 1024 次构建耗时 3 分 12 秒。", "房间号是 B-203，在二楼。", "退货需在30天内完成。",
           "库存还有 4,500 件。", "预计 2026-12-03 到货。", "本次折扣为 85 折。", "课程共 12 节，每节 45 分钟。",
           "这台机器重 2.5 公斤。"],
    "es": ["El pedido 4521 llegará el 3/12/2026.", "Calle Mayor 12, 28013 Madrid.", "El total fue de 1.234,56 € con IVA.",
           "La versión 3.14.2 corrige el error de acceso.", "Nos vemos a las 10:45 en la sala 1402.",
           "Vendimos 12.500 unidades en el tercer trimestre.", "La factura FAC-2026-00042 vence en 30 días.",
           "El lote 20261126-07 pasó el control de calidad.", "Escribe a @ana en el canal.",
           "La referencia SKU-4411-2093 pesa 2,5 kg.", "El horario es de 9 a 17 h, de lunes a viernes.",
           "El ticket 7788-12 se cerró ayer.", "Usa el modelo gpt-4o-mini con temperatura 0,7.",
           "La proporción fue 3:2:1.", "Descuento del 15% hasta el 30/11.", "Quedan 4.500 unidades en stock.",
           "El curso tiene 12 clases de 45 minutos.", "Habitación B-203, segunda planta.",
           "La compilación 1024 tardó 3 min 12 s.", "Devoluciones en un plazo de 30 días."],
}


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for d in string.digits:
        if luhn_ok(body + d):
            return body + d
    raise AssertionError("unreachable")


def _iban(country: str, bban: str) -> str:
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(digits) % 97
    return f"{country}{check:02d}{bban}"


def _group(s: str, n: int = 4) -> str:
    return " ".join(s[i:i + n] for i in range(0, len(s), n))


def pii_values(rng: random.Random) -> list[tuple[str, str]]:
    """(kind, value) pairs of every kind and many formats."""
    names = ["ana.garcia", "li.wei", "j.smith+billing", "maria_lopez", "zhang.san", "o.connor", "team-ops"]
    domains = ["example.com", "mail.example.es", "example.cn", "corp.example.co.uk", "example.org"]
    out = [("email", f"{rng.choice(names)}{rng.randint(1, 99)}@{rng.choice(domains)}") for _ in range(12)]
    out += [("email", f"{rng.choice(names)}＠{rng.choice(domains)}")]  # full-width at sign (CJK keyboards)
    n4 = lambda: f"{rng.randint(0, 9999):04d}"  # noqa: E731
    phones = [f"+1 415-555-{n4()}", f"+44 20 7946 {n4()}", f"+34 612 345 {rng.randint(100, 999)}",
              f"+86 138 0013 {n4()}", f"1{rng.choice('3456789')}{rng.randint(100000000, 999999999)}",
              f"(415) 555-{n4()}", f"415.555.{n4()}", f"+49 30 {rng.randint(10000000, 99999999)}",
              f"+33 1 42 68 {rng.randint(10, 99)} {rng.randint(10, 99)}", f"020 7946 {n4()}",
              f"+52 55 {n4()} {n4()}", f"+81 3-{n4()}-{n4()}"]
    out += [("phone", p) for p in phones]
    for prefix, length in (("4", 16), ("51", 16), ("55", 16), ("34", 15), ("37", 15), ("6011", 16)) * 2:
        card = _luhn_complete(prefix, length, rng)
        style = rng.choice(["plain", "spaces", "dashes"])
        shown = card if style == "plain" else (_group(card) if style == "spaces" else _group(card).replace(" ", "-"))
        out.append(("card", shown))
    out.append(("card", _group(_luhn_complete("4", 16, rng)).replace(" ", ".")))  # 4111.1111.1111.1111
    for _ in range(3):
        de = _iban("DE", "".join(rng.choice(string.digits) for _ in range(18)))
        es = _iban("ES", "".join(rng.choice(string.digits) for _ in range(20)))
        gb = _iban("GB", "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) +
                   "".join(rng.choice(string.digits) for _ in range(14)))
        out += [("iban", _group(de)), ("iban", es), ("iban", _group(gb)), ("iban", _group(es).lower())]
    out += [("ip", f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}")
            for _ in range(6)]
    out += [("ip", v) for v in ("2001:db8::1", "fe80::1ff:fe23:4567:890a", "2001:0db8:85a3:0000:0000:8a2e:0370:7334")]
    alnum = string.ascii_letters + string.digits
    out += [("secret", "sk-proj-" + "".join(rng.choice(alnum) for _ in range(40))),
            ("secret", "sk-" + "".join(rng.choice(alnum) for _ in range(48))),
            ("secret", "Bearer " + "".join(rng.choice(alnum) for _ in range(32))),
            ("secret", "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))),
            ("secret", "ghp_" + "".join(rng.choice(alnum) for _ in range(36))),
            ("secret", "sk_live_" + "".join(rng.choice(alnum) for _ in range(24))),
            ("secret", "rk_test_" + "".join(rng.choice(alnum) for _ in range(24)))]
    return out


def corpus(seed: int = 7) -> tuple[list[tuple[str, str, str, str]], list[tuple[str, str]]]:
    """(language, kind, value, snippet) positives and (language, snippet) negatives."""
    rng = random.Random(seed)
    positives = []
    for lang, templates in POSITIVE_TEMPLATES.items():
        for _ in range(2):  # two draws of every format per language
            for kind, value in pii_values(rng):
                positives.append((lang, kind, value, rng.choice(templates).format(v=value)))
    negatives = [(lang, text) for lang, texts in NEGATIVES.items() for text in texts]
    # More negatives: the same sentences with other numbers, so near-misses are plentiful.
    for lang, texts in NEGATIVES.items():
        for text in texts:
            negatives.append((lang, text.replace("2026", str(rng.randint(2019, 2030)))))
            negatives.append((lang, text.replace("12", str(rng.randint(10, 99)))))
            negatives.append((lang, f"{text} Ref {rng.randint(1000, 99999)}-{rng.randint(1, 9)}."))
    return positives, negatives
