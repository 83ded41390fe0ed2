"""The moderation gate: prompts (and, if chosen, replies) checked with the moderation endpoint
(`omni-moderation-latest`) before they go further. A flagged prompt is not sent. When the endpoint cannot be
reached the workspace's choice applies: fail open (send, with a notice) or fail closed (hold the message).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from core.base.errors import PromptLabError
from core.base.i18n import _
from core.calls.gate import CallContext, logged_call
from core.calls.log import CallLog, CallRecord, CallTexts
from core.llm.providers import Provider
from core.policy.access import Identity
from core.policy.workspace import Setting, Workspace

MODEL = "omni-moderation-latest"
SETTINGS_KEY = "moderation"


@dataclass(frozen=True)
class ModerationSettings:
    """off | input | input_and_output, and what to do when the check cannot run."""

    mode: str = "off"
    fail_open: bool = True

    @property
    def checks_input(self) -> bool:
        return self.mode in ("input", "input_and_output")

    @property
    def checks_output(self) -> bool:
        return self.mode == "input_and_output"


MODERATION = Setting(SETTINGS_KEY, ModerationSettings(), stored_as=ModerationSettings)


def load_moderation(engine: Engine) -> ModerationSettings:
    return Workspace(engine).load(MODERATION)


def save_moderation(engine: Engine, value: ModerationSettings, *, actor: Identity) -> None:
    """Moderation for everyone: an admin's choice (AdminOnly otherwise), audited."""
    Workspace(engine).save(MODERATION, value, actor=actor)


@dataclass
class Verdict:
    """The check's answer: `allowed` to go on, the flagged categories, and a notice when the check could not run."""

    allowed: bool
    categories: list[str] = field(default_factory=list)
    notice: str | None = None

    def sentence(self, what: str = "message") -> str:
        if self.categories:
            text = (_("This message was flagged by moderation ({categories}) and was not sent: edit it and try "
                      "again.") if what == "message" else
                    _("This reply was flagged by moderation ({categories}).")).format(
                categories=", ".join(self.categories))
            return text
        return self.notice or ""


def check(provider: Provider, text: str, settings: ModerationSettings, context: CallContext, log: CallLog,
          what: str = "message") -> Verdict:
    """Check one text (logged with page `moderation`)."""
    ctx = CallContext("moderation", context.user, context.session, list(context.tags))

    def describe(response: Any, record: CallRecord) -> None:
        record.model = getattr(response, "model", None) or MODEL

    try:
        if provider.kind == "local":
            raise PromptLabError("no_moderation", _("The offline model has no moderation endpoint."))
        response, _record = logged_call(provider, ctx, log, lambda c: c.moderations.create(model=MODEL, input=text),
                                        model=MODEL, operation="moderation", describe=describe, endpoint="moderations",
                                        texts=CallTexts({"input": text}))
    except PromptLabError as err:
        if settings.fail_open:
            notice = (_("The moderation check could not run ({kind}); the message went through unchecked.")
                      if what == "message" else
                      _("The moderation check could not run ({kind}); the reply went through unchecked."))
            return Verdict(True, notice=notice.format(kind=err.kind))
        notice = (_("The moderation check could not run ({kind}) and this workspace requires it: the message was "
                    "held back; try again in a moment.") if what == "message" else
                  _("The moderation check could not run ({kind}) and this workspace requires it: the reply was "
                    "held back; try again in a moment."))
        return Verdict(False, notice=notice.format(kind=err.kind))
    result = response.results[0]
    categories = sorted(k.replace("_", " ") for k, v in result.categories.model_dump().items() if v)
    return Verdict(not result.flagged, categories if result.flagged else [])
