"""The statistics that make an eval decide: a pass rate's 95 % interval (Wilson) and a paired comparison of two
prompts, models or runs on the same cases (exact McNemar on the cases that flipped)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from core.base.i18n import _

Z95 = 1.959963984540054


def wilson(passed: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a pass rate (sound at 0 %, 100 % and small n, unlike p ± 1.96·se)."""
    if total <= 0:
        return 0.0, 1.0
    p = passed / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return (0.0 if passed == 0 else max(0.0, centre - half)), (1.0 if passed == total else min(1.0, centre + half))


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b cases only A passed, c cases only B passed (binomial, p = ½)."""
    n = b + c
    if n == 0:
        return 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


@dataclass(frozen=True, kw_only=True)
class PairedComparison:
    """A against B on the cases both ran (paired by case and repeat)."""

    label_a: str
    label_b: str
    a_passed: int
    b_passed: int
    pairs: int
    b_better: list[tuple[int, int]]  # (case, repeat) where B passed and A failed
    b_worse: list[tuple[int, int]]   # (case, repeat) where A passed and B failed

    @property
    def p_value(self) -> float:
        return mcnemar_exact(len(self.b_worse), len(self.b_better))

    def sentence(self) -> str:
        if not self.pairs:
            return _("{b} and {a} share no cases to compare.").format(b=self.label_b, a=self.label_a)
        differs = len(self.b_better) != len(self.b_worse)
        significant = "" if self.p_value < 0.05 or not differs else _(" — not a significant difference")
        return _("{b} passes {b_passed}/{pairs}, {a} {a_passed}/{pairs}; {b} better on {better} cases, worse on "
                 "{worse}, p = {p:.2g}").format(b=self.label_b, a=self.label_a, b_passed=self.b_passed,
                                                a_passed=self.a_passed, pairs=self.pairs, better=len(self.b_better),
                                                worse=len(self.b_worse), p=self.p_value) + significant + "."


def compare_paired(a: dict[tuple[int, int], bool], b: dict[tuple[int, int], bool], label_a: str = "A",
                   label_b: str = "B") -> PairedComparison:
    """Pass/fail of A and B keyed by (case, repeat); only keys both have count."""
    keys = sorted(set(a) & set(b))
    return PairedComparison(label_a=label_a, label_b=label_b, a_passed=sum(a[k] for k in keys),
                            b_passed=sum(b[k] for k in keys), pairs=len(keys),
                            b_better=[k for k in keys if b[k] and not a[k]],
                            b_worse=[k for k in keys if a[k] and not b[k]])


def newcombe_interval(passed_a: int, n_a: int, passed_b: int, n_b: int, phi: float = 0.0, z: float = Z95
                      ) -> tuple[float, float, float]:
    """B's pass rate minus A's with Newcombe's hybrid-score interval (method 10 of his 1998 papers): the two
    Wilson intervals combined, through the correlation `phi` of paired outcomes (0: independent samples). Sound
    at small n and near 0 or 100 %, where the Wald interval is not. Returns (difference, low, high)."""
    if not n_a or not n_b:
        return 0.0, -1.0, 1.0
    p_a, p_b = passed_a / n_a, passed_b / n_b
    l_a, u_a = wilson(passed_a, n_a, z)
    l_b, u_b = wilson(passed_b, n_b, z)
    difference = p_b - p_a
    low = difference - math.sqrt(max(0.0, (p_b - l_b) ** 2 - 2 * phi * (p_b - l_b) * (u_a - p_a) + (u_a - p_a) ** 2))
    high = difference + math.sqrt(max(0.0, (u_b - p_b) ** 2 - 2 * phi * (u_b - p_b) * (p_a - l_a) + (p_a - l_a) ** 2))
    return difference, max(-1.0, low), min(1.0, high)


def paired_difference(a_only: int, b_only: int, both: int, neither: int, z: float = Z95
                      ) -> tuple[float, float, float]:
    """B's pass rate minus A's on the same cases (pairs where only A passed, only B, both, neither), with
    Newcombe's interval for paired proportions: phi is the correlation of the 2×2 table of pairs."""
    n = a_only + b_only + both + neither
    denominator = (both + a_only) * (neither + b_only) * (both + b_only) * (neither + a_only)
    phi = (both * neither - a_only * b_only) / math.sqrt(denominator) if denominator else 0.0
    return newcombe_interval(both + a_only, n, both + b_only, n, phi, z)
def sign_test(wins: int, losses: int) -> float:
    """Two-sided exact sign test (ties already left out): B won `wins` cases, A `losses`, against p = ½. The same
    binomial as exact McNemar on the discordant cases — a side-by-side vote is a discordant pair or a tie."""
    return mcnemar_exact(losses, wins)


def cohen_kappa(pairs: list[tuple[str, str]]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items: (observed − chance agreement) / (1 − chance), chance
    from each rater's own label frequencies. None when undefined (no items, or both always gave one same label)."""
    n = len(pairs)
    if not n:
        return None
    observed = sum(x == y for x, y in pairs) / n
    labels = {x for x, _ in pairs} | {y for _, y in pairs}
    chance = sum((sum(x == label for x, _ in pairs) / n) * (sum(y == label for _, y in pairs) / n)
                 for label in labels)
    return None if chance >= 1 else (observed - chance) / (1 - chance)


@dataclass(frozen=True, kw_only=True)
class WinRate:
    """B against A by people's side-by-side votes, one verdict per case. LMSYS's convention (Chatbot Arena's "win
    fraction of non-tied battles"): ties are left out of the rate, its Wilson interval and the sign test, and are
    counted beside them."""

    b_wins: int
    a_wins: int
    ties: int

    @property
    def decisive(self) -> int:
        return self.b_wins + self.a_wins

    @property
    def rate(self) -> float | None:
        return self.b_wins / self.decisive if self.decisive else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.b_wins, self.decisive)

    @property
    def p_value(self) -> float:
        return sign_test(self.b_wins, self.a_wins)
