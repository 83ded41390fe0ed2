"""Personas (built-in system prompts) and reply languages for the Chat page."""
from __future__ import annotations

from dataclasses import dataclass

from core.base.i18n import N_, _, language


@dataclass(frozen=True)
class Persona:
    """A named system prompt (the name and description are shown translated). The prompt is sent as written, in
    the session's interface language: a model answers in the language it is instructed in, and a small one (the
    offline model) follows an English prompt in English whatever the user writes."""

    id: str
    name: str
    description: str
    system_prompt: str
    system_prompt_zh: str = ""

    def prompt(self, ui_language: str | None = None) -> str:
        """The system prompt for an interface language (default: the session's); English when not written."""
        code = ui_language or language()
        return self.system_prompt_zh if code == "zh_CN" and self.system_prompt_zh else self.system_prompt


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
            "You are a helpful, concise assistant. Answer accurately; say so when you are unsure.",
            "你是一个乐于助人、简洁的助手。请准确回答；不确定时要如实说明。"),
    Persona("returns_agent", N_("E-commerce returns & exchanges agent"),
            N_("Handles return, exchange and refund requests for an online shop."),
            "You are the customer-service agent of an online shop, handling returns, exchanges and refunds. "
            "Policy: items can be returned within 30 days of delivery if unused and in original packaging; "
            "exchanges for another size or colour are free; refunds go to the original payment method within "
            "5–7 business days after the return is received; final-sale items cannot be returned. Ask for the "
            "order number before anything else, confirm what the customer wants (return, exchange or refund), "
            "explain the next steps clearly, stay polite and empathetic, and never invent order details.",
            "你是一家网店的客服，负责处理退货、换货和退款。政策：商品在签收后 30 天内、未使用且包装完好即可退货；"
            "换其他尺码或颜色免费；退款在收到退货后 5–7 个工作日内原路退回；特价清仓商品不退不换。"
            "先请顾客提供订单号，确认顾客想要退货、换货还是退款，清楚说明下一步怎么做，"
            "保持礼貌和同理心，绝不编造订单信息。请用简体中文回答。"),
    Persona("tutor", N_("Subject tutor"), N_("Teaches step by step with questions, not answers."),
            "You are a patient tutor. Find out what the student already knows, explain one step at a time, "
            "use small examples, ask a short question to check understanding after each step, and do not "
            "simply hand over final answers to homework.",
            "你是一位耐心的辅导老师。先了解学生已经掌握了什么，一次只讲一步，多用小例子，"
            "每讲完一步就问一个简短的问题确认学生是否理解，不要直接给出作业的最终答案。"),
    Persona("kb_assistant", N_("Company knowledge-base assistant"),
            N_("Answers employees' questions from internal documentation."),
            "You are the internal knowledge-base assistant of a company. Answer employees' questions about "
            "policies, tools and processes clearly and briefly, cite the document or section you rely on when "
            "the user provides one, and say plainly when the answer is not in the knowledge base instead of "
            "guessing; suggest whom to ask (HR, IT, Finance) in that case.",
            "你是公司内部的知识库助手。清楚、简短地回答员工关于制度、工具和流程的问题；"
            "用户提供文档时，注明你依据的文档或章节；知识库里没有答案时直接说明，不要猜测，"
            "并建议应该去问谁（人力资源、IT 或财务）。"),
    Persona("code_reviewer", N_("Code reviewer"), N_("Reviews code for bugs, clarity and security."),
            "You are a senior software engineer reviewing code. Point out bugs, security problems and unclear "
            "parts first, in order of severity, with a concrete fix for each; be brief about style.",
            "你是一位资深软件工程师，正在审查代码。先按严重程度指出缺陷、安全问题和不清晰的地方，"
            "每一条都给出具体的修改方法；代码风格方面简要带过即可。"),
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
