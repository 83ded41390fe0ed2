"""Human rating: people judge, blind and side by side, what an assertion cannot — two configurations' outputs for the
same case of a finished run, drawn as "Left" and "Right" in an order fixed per (rater, case) by a hash, so a rerun
shows the same sides and the rater cannot tell which prompt is which until the queue is done.

Each vote is written the moment it is cast (a tab closed mid-queue keeps every vote; the queue resumes at the first
case the rater has not voted on). The rater is the signed-in identity, never a field; a rater reads and changes only
their own votes (an admin reads all), and may rate only a run the store lets them read (its owner's, an admin) or
one its owner opened for rating (then every signed-in user rates its cases, and sees nothing else of it). The votes of a pair are a
verdict like an assertion's: B's win rate over A with its Wilson interval, the sign test, and Cohen's kappa between
every two raters who rated the same cases (`summary`, results.json's `summary.ratings`).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from itertools import combinations
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.base.clock import utc_now_iso
from core.base.db import engine_for
from core.base.i18n import _
from core.evals.stats import WinRate, cohen_kappa
from core.evals.store import RUNNING, EvalStore, SavedEvalRun
from core.policy.access import Identity

LEFT, RIGHT, TIE, SKIP = "left", "right", "tie", "skip"
VOTES = (LEFT, RIGHT, TIE, SKIP)
Config = tuple[str, str]  # (prompt, provider): one configuration of a run

_meta = sa.MetaData()
eval_ratings_table = sa.Table(  # m017
    "eval_ratings", _meta,
    sa.Column("run_id", sa.Text, primary_key=True), sa.Column("pair_key", sa.Text, primary_key=True),
    sa.Column("case_key", sa.Text, primary_key=True), sa.Column("rater", sa.Text, primary_key=True),
    sa.Column("config_a", sa.Text), sa.Column("config_b", sa.Text), sa.Column("vote", sa.Text),
    sa.Column("shown", sa.Text), sa.Column("created_at", sa.Text),
)


class RatingRefused(PermissionError):
    """A vote the rater may not cast, or a run they may not rate: the one sentence to show."""


@dataclass(frozen=True, kw_only=True)
class RatingCase:
    """One case both configurations answered without an error: what the rater is shown."""

    key: str  # "<test index>:<repeat>"
    test_index: int
    repeat: int
    description: str
    vars: dict[str, Any]
    output_a: str
    output_b: str


@dataclass(frozen=True, kw_only=True)
class Vote:
    """One rater's vote on one case: as cast (left / right / tie / skip) and with the sides it was shown."""

    case_key: str
    rater: str
    vote: str
    shown: str  # "AB": A was drawn on the left; "BA": B was
    created_at: str

    @property
    def winner(self) -> str:
        """The vote in the configurations' terms: "a", "b", "tie" or "skip"."""
        if self.vote in (TIE, SKIP):
            return self.vote
        return "a" if (self.vote == LEFT) == (self.shown == "AB") else "b"


@dataclass(frozen=True, kw_only=True)
class RatingQueue:
    """A rater's queue for one pair of one run: the cases, their own votes, and where they are."""

    cases: list[RatingCase]
    votes: dict[str, Vote]  # case key -> this rater's vote

    @property
    def rated(self) -> int:
        return sum(c.key in self.votes for c in self.cases)

    @property
    def skipped(self) -> int:
        return sum(self.votes[c.key].vote == SKIP for c in self.cases if c.key in self.votes)

    @property
    def next_case(self) -> RatingCase | None:
        """The first case without a vote (None: the queue is done)."""
        return next((c for c in self.cases if c.key not in self.votes), None)


def config_text(config: Config) -> str:
    return json.dumps(list(config), ensure_ascii=False)


def pair_key(a: Config, b: Config) -> str:
    """A short, fixed key for the ordered pair (prompts may be longer than an index entry may hold)."""
    return hashlib.sha256(json.dumps([list(a), list(b)], ensure_ascii=False).encode()).hexdigest()[:32]


def shown_order(run_id: str, pair: str, rater: str, case_key: str) -> str:
    """Which configuration is drawn on the left for this rater and case: "AB" or "BA", from a hash, so the same
    rater sees the same sides on every rerun, other raters their own, and about half the cases each way."""
    digest = hashlib.sha256("\x1f".join((run_id, pair, rater, case_key)).encode()).digest()
    return "AB" if digest[0] & 1 == 0 else "BA"


def pair_labels(a: Config, b: Config) -> tuple[str, str]:
    """The two configurations named by what differs between them (the prompts, the providers, or both)."""
    if a[0] == b[0]:
        return a[1], b[1]
    if a[1] == b[1]:
        return a[0], b[0]
    return f"{a[0]} · {a[1]}", f"{b[0]} · {b[1]}"


def _answered(run: SavedEvalRun, config: Config) -> dict[tuple[int, int], dict[str, Any]]:
    return {(r["test_index"], r["repeat"]): r for r in run.rows
            if (r["prompt"], r["provider"]) == config and r.get("graded", True) and not r.get("error")}


def rating_cases(run: SavedEvalRun, a: Config, b: Config) -> list[RatingCase]:
    """The cases both configurations answered without an error, in case order."""
    rows_a, rows_b = _answered(run, a), _answered(run, b)
    return [RatingCase(key=f"{i}:{rep}", test_index=i, repeat=rep,
                       description=str(rows_a[(i, rep)].get("description") or ""),
                       vars=dict(rows_a[(i, rep)].get("vars") or {}),
                       output_a=str(rows_a[(i, rep)].get("output") or ""),
                       output_b=str(rows_b[(i, rep)].get("output") or ""))
            for i, rep in sorted(set(rows_a) & set(rows_b))]


def rateable_pairs(run: SavedEvalRun) -> list[tuple[Config, Config]]:
    """Every two configurations of the run with cases to rate, A listed first in the config."""
    configs = list(dict.fromkeys((r["prompt"], r["provider"]) for r in run.rows))
    answered = {c: set(_answered(run, c)) for c in configs}
    return [(a, b) for a, b in combinations(configs, 2) if answered[a] & answered[b]]


def _case_order(case_key: str) -> tuple[int, ...]:
    """"10:0" after "2:0": the order of the cases, not of their keys as text."""
    return tuple(int(part) for part in case_key.split(":"))


def _vote(row: Any) -> Vote:
    return Vote(case_key=row.case_key, rater=row.rater, vote=row.vote, shown=row.shown, created_at=row.created_at)


class Ratings:
    """One identity's ratings in the database at a SQLAlchemy URL: only runs the store lets them read or that were
    opened for rating, only their own votes (an admin reads everyone's)."""

    def __init__(self, url: str, identity: Identity):
        self.url, self.identity = url, identity
        self.engine = engine_for(url)

    def _open_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id FROM eval_runs WHERE rating_open ORDER BY created_at DESC "
                                             "LIMIT 50")).scalars())

    def is_open(self, run_id: str) -> bool:
        """Whether every signed-in user may rate the run (its owner's choice, or an admin's)."""
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.text("SELECT rating_open FROM eval_runs WHERE id = :id"),
                                     {"id": run_id}).scalar())

    def run(self, run_id: str) -> SavedEvalRun:
        """The run to rate: one the store lets the identity read (its owner, or an admin), or one opened for rating;
        a running run is not ready."""
        run = EvalStore(self.url, self.identity.name, self.identity.admin).run(run_id)
        if run is None and self.is_open(run_id):
            run = EvalStore(self.url).run(run_id)
        if run is None:
            raise RatingRefused(_("This run is not yours to rate: its owner has not opened it for rating."))
        if run.status == RUNNING:
            raise RatingRefused(_("This run is still running: rate it when it has finished."))
        return run

    def open_runs(self) -> list[SavedEvalRun]:
        """Other people's runs opened for rating (the newest 50), besides the runs the identity may read anyway."""
        store = EvalStore(self.url)
        return [run for run in (store.run(i) for i in self._open_ids()) if run is not None]

    def open_for_rating(self, run_id: str, is_open: bool) -> None:
        """Let every signed-in user rate the run (its cases and the two outputs, never the rest of it), or only its
        owner and admins again: the owner's choice, or an admin's."""
        if EvalStore(self.url, self.identity.name, self.identity.admin).run(run_id) is None:
            raise RatingRefused(_("Only the run's owner or an admin may open it for rating."))
        with self.engine.begin() as conn:
            conn.execute(sa.text("UPDATE eval_runs SET rating_open = :o WHERE id = :id"),
                         {"o": is_open, "id": run_id})

    def _votes(self, run_id: str, pair: str, rater: str | None) -> list[Vote]:
        t = eval_ratings_table
        query = sa.select(t).where((t.c.run_id == run_id) & (t.c.pair_key == pair))
        if rater is not None:
            query = query.where(t.c.rater == rater)
        with self.engine.connect() as conn:
            found = [_vote(r) for r in conn.execute(query)]
        return sorted(found, key=lambda v: (v.rater, _case_order(v.case_key)))

    def queue(self, run_id: str, a: Config, b: Config) -> RatingQueue:
        """The rater's queue: every case of the pair and their own votes so far (a new session resumes here)."""
        run = self.run(run_id)
        mine = self._votes(run.id, pair_key(a, b), self.identity.name)
        return RatingQueue(cases=rating_cases(run, a, b), votes={v.case_key: v for v in mine})

    def cast(self, run_id: str, a: Config, b: Config, case_key: str, vote: str) -> Vote:
        """Store the rater's vote on one case at once (a second vote on the same case replaces their first). The
        sides come from `shown_order`, never from the page."""
        if vote not in VOTES:
            raise RatingRefused(_("A vote is left, right, tie or skip."))
        run = self.run(run_id)
        if case_key not in {c.key for c in rating_cases(run, a, b)}:
            raise RatingRefused(_("This case is not one both configurations answered in this run."))
        pair, rater = pair_key(a, b), self.identity.name
        cast = Vote(case_key=case_key, rater=rater, vote=vote, shown=shown_order(run.id, pair, rater, case_key),
                    created_at=utc_now_iso())
        t = eval_ratings_table
        with self.engine.begin() as conn:  # the rater's own row only: the key holds their name
            conn.execute(t.delete().where((t.c.run_id == run.id) & (t.c.pair_key == pair)
                                          & (t.c.case_key == case_key) & (t.c.rater == rater)))
            conn.execute(t.insert(), {"run_id": run.id, "pair_key": pair, "case_key": case_key, "rater": rater,
                                      "config_a": config_text(a), "config_b": config_text(b), "vote": vote,
                                      "shown": cast.shown, "created_at": cast.created_at})
        return cast

    def votes(self, run_id: str, a: Config, b: Config) -> list[Vote]:
        """The votes the identity may see: their own; an admin, every rater's."""
        run = self.run(run_id)
        return self._votes(run.id, pair_key(a, b), None if self.identity.admin else self.identity.name)


def _case_verdicts(votes: list[Vote]) -> dict[str, str]:
    """One verdict per case from its raters' votes (skips left out): the side more raters chose, else a tie."""
    tally: dict[str, list[str]] = {}
    for v in votes:
        if v.winner != SKIP:
            tally.setdefault(v.case_key, []).append(v.winner)
    return {case: "b" if w.count("b") > w.count("a") else "a" if w.count("a") > w.count("b") else TIE
            for case, w in tally.items()}


def agreement(votes: list[Vote]) -> list[dict[str, Any]]:
    """Cohen's kappa for every two raters over the cases both voted on (skips left out), labels a / b / tie."""
    by_rater: dict[str, dict[str, str]] = {}
    for v in votes:
        if v.winner != SKIP:
            by_rater.setdefault(v.rater, {})[v.case_key] = v.winner
    out = []
    for r1, r2 in combinations(sorted(by_rater), 2):
        shared = sorted(set(by_rater[r1]) & set(by_rater[r2]))
        if shared:
            out.append({"raters": [r1, r2], "shared_cases": len(shared),
                        "kappa": cohen_kappa([(by_rater[r1][c], by_rater[r2][c]) for c in shared])})
    return out


def pair_summary(a: Config, b: Config, cases: int, votes: list[Vote]) -> dict[str, Any]:
    """The verdict of one pair's votes, as results.json holds it."""
    verdicts = list(_case_verdicts(votes).values())
    win = WinRate(b_wins=verdicts.count("b"), a_wins=verdicts.count("a"), ties=verdicts.count(TIE))
    label_a, label_b = pair_labels(a, b)
    return {"a": label_a, "b": label_b, "config_a": list(a), "config_b": list(b), "cases": cases,
            "rated_cases": len(verdicts), "raters": len({v.rater for v in votes}),
            "votes": sum(v.vote != SKIP for v in votes), "b_wins": win.b_wins, "a_wins": win.a_wins,
            "ties": win.ties, "b_win_rate": win.rate, "interval_95": list(win.interval),
            "sign_test_p": win.p_value, "ties_rule": "excluded", "agreement": agreement(votes)}


def summary(engine: Engine, run: SavedEvalRun) -> list[dict[str, Any]]:
    """Every rated pair of a run (read by its caller under the store's rules): results.json's `summary.ratings`."""
    t = eval_ratings_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).where(t.c.run_id == run.id).order_by(t.c.pair_key, t.c.rater)).all()
    grouped: dict[str, list[Any]] = {}
    for r in rows:
        grouped.setdefault(r.pair_key, []).append(r)
    out = []
    for group in grouped.values():
        a = tuple(json.loads(group[0].config_a))
        b = tuple(json.loads(group[0].config_b))
        out.append(pair_summary((a[0], a[1]), (b[0], b[1]), len(rating_cases(run, (a[0], a[1]), (b[0], b[1]))),
                                [_vote(r) for r in group]))
    return out


def with_ratings(engine: Engine, run: SavedEvalRun) -> SavedEvalRun:
    """The run with `summary.ratings` (for results.json and the HTML report) when anyone has rated it."""
    rated = summary(engine, run)
    return replace(run, summary={**run.summary, "ratings": rated}) if rated else run


def sentence(pair: dict[str, Any]) -> str:
    """One pair's verdict in words."""
    if not pair["b_wins"] + pair["a_wins"]:
        return _("{b} and {a}: no case decided yet ({ties} ties).").format(b=pair["b"], a=pair["a"],
                                                                         ties=pair["ties"])
    low, high = pair["interval_95"]
    text = _("{b} preferred over {a} in {wins} of {decisive} decided cases ({rate:.0%}, interval (95%) {low:.0%}–"
             "{high:.0%}; {ties} ties left out), sign test p = {p:.2g}").format(
        b=pair["b"], a=pair["a"], wins=pair["b_wins"], decisive=pair["b_wins"] + pair["a_wins"],
        rate=pair["b_win_rate"], low=low, high=high, ties=pair["ties"], p=pair["sign_test_p"])
    return text + ("" if pair["sign_test_p"] < 0.05 else _(" — not a significant difference")) + "."
