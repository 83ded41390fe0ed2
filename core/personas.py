"""Personas (built-in system prompts) and reply languages for the Chat page."""
from __future__ import annotations

from dataclasses import dataclass

from core.i18n import N_, _


@dataclass(frozen=True)
class Persona:
    """A named system prompt (the name and description are shown translated; the prompt itself is sent as is)."""

    id: str
    name: str
    description: str
    system_prompt: str


CUSTOM_ID = "custom"

# What an empty chat offers to ask first, per persona: a demo starts with one click, not with a blank box.
STARTERS: dict[str, tuple[str, ...]] = {
    "assistant": (N_("Explain the difference between a list and a tuple in Python, with one example each."),
                  N_("Draft a polite two-line reply declining a meeting invitation."),
                  N_("Summarise the pros and cons of remote work in five bullet points.")),
    "returns_agent": (N_("I bought running shoes 20 days ago and they hurt. Can I return them?"),
                      N_("My order arrived damaged. What are my options?"),
                      N_("Can I exchange a jacket for a different size without paying shipping again?")),
    "tutor": (N_("Help me understand why the derivative of x² is 2x."),
              N_("Quiz me on the causes of the First World War."),
              N_("How do I balance the equation H₂ + O₂ → H₂O?")),
    "kb_assistant": (N_("How many vacation days do new employees get?"),
                     N_("What is the process for requesting a new laptop?"),
                     N_("Who approves travel expenses above the limit?")),
    "code_reviewer": (N_("Review this function: def avg(xs): return sum(xs) / len(xs)"),
                      N_("Is it safe to build SQL with f-strings? Show a better way."),
                      N_("What should I check first when reviewing a pull request?")),
}


def starters(persona_id: str) -> tuple[str, ...]:
    """The starter prompts for a persona (the general assistant's for a custom system prompt)."""
    return tuple(_(text) for text in STARTERS.get(persona_id, STARTERS["assistant"]))

BUILT_IN: tuple[Persona, ...] = (
    Persona("assistant", N_("General assistant"), N_("Helpful, concise, honest."),
            "You are a helpful, concise assistant. Answer accurately; say so when you are unsure."),
    Persona("returns_agent", N_("E-commerce returns & exchanges agent"),
            N_("Handles return, exchange and refund requests for an online shop."),
            "You are the customer-service agent of an online shop, handling returns, exchanges and refunds. "
            "Policy: items can be returned within 30 days of delivery if unused and in original packaging; "
            "exchanges for another size or colour are free; refunds go to the original payment method within "
            "5–7 business days after the return is received; final-sale items cannot be returned. Ask for the "
            "order number before anything else, confirm what the customer wants (return, exchange or refund), "
            "explain the next steps clearly, stay polite and empathetic, and never invent order details."),
    Persona("tutor", N_("Subject tutor"), N_("Teaches step by step with questions, not answers."),
            "You are a patient tutor. Find out what the student already knows, explain one step at a time, "
            "use small examples, ask a short question to check understanding after each step, and do not "
            "simply hand over final answers to homework."),
    Persona("kb_assistant", N_("Company knowledge-base assistant"),
            N_("Answers employees' questions from internal documentation."),
            "You are the internal knowledge-base assistant of a company. Answer employees' questions about "
            "policies, tools and processes clearly and briefly, cite the document or section you rely on when "
            "the user provides one, and say plainly when the answer is not in the knowledge base instead of "
            "guessing; suggest whom to ask (HR, IT, Finance) in that case."),
    Persona("code_reviewer", N_("Code reviewer"), N_("Reviews code for bugs, clarity and security."),
            "You are a senior software engineer reviewing code. Point out bugs, security problems and unclear "
            "parts first, in order of severity, with a concrete fix for each; be brief about style."),
)

LANGUAGES: dict[str, str | None] = {
    "Auto": None, "English": "English", "中文": "Simplified Chinese", "Español": "Spanish",
    "Français": "French", "Deutsch": "German", "日本語": "Japanese", "Português": "Portuguese",
    "한국어": "Korean", "Italiano": "Italian", "Русский": "Russian", "العربية": "Arabic", "हिन्दी": "Hindi",
}


AUTO_LANGUAGE = "Auto"


def language_label(language: str) -> str:
    """A reply language as the menu shows it: each in its own name, "Auto" in the UI language."""
    return _("Auto") if language == AUTO_LANGUAGE else language


def persona_by_id(persona_id: str) -> Persona | None:
    return next((p for p in BUILT_IN if p.id == persona_id), None)


def language_instruction(language: str) -> str | None:
    """The sentence added to the system message for a reply language (None for Auto)."""
    name = LANGUAGES.get(language)
    return f"Always reply in {name}, whatever language the user writes in." if name else None
