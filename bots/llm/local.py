"""The offline provider: answers from the context it is given, deterministically, word by word."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from bots.llm.types import (
    ChatMessage,
    CompletionRequest,
    StreamEnd,
    StreamItem,
    TextDelta,
    Usage,
    estimate_tokens,
)

MODEL_ID = "bytchat-local"
_WORD = re.compile(r"[\w'-]+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
# Short function words in English and Spanish carry no topic; they would match every sentence.
_STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "el",
        "la",
        "los",
        "las",
        "un",
        "una",
        "unos",
        "unas",
        "y",
        "o",
        "de",
        "del",
        "al",
        "en",
        "que",
        "es",
        "son",
        "por",
        "para",
        "con",
        "sin",
        "como",
        "cual",
        "cuál",
        "qué",
        "quien",
        "se",
        "su",
        "sus",
        "mi",
        "te",
        "lo",
        "le",
        "les",
        "ya",
        "muy",
        "más",
        "mas",
        "pero",
        "sobre",
        "este",
        "esta",
        "estos",
        "estas",
        "eso",
        "esa",
        "ese",
        "hay",
        "fue",
        "ser",
    }
)
MAX_CONTEXT_SENTENCES = 3
# The data blocks chats/prompts.py fences inside the system message. The rest of that message is the
# bot owner's instructions (its system prompt), which this model never quotes: a public bot would
# otherwise read them out to any visitor whose words overlap with them (issue 12).
_DATA_BLOCK = re.compile(r"<(business_data|documents|web_results)>\n(.*?)\n</\1>", re.DOTALL)


def _terms(text: str) -> set[str]:
    return {w for w in (m.lower() for m in _WORD.findall(text)) if len(w) > 2 and w not in _STOPWORDS}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 1]


def _quotable(message: ChatMessage) -> str:
    """What may be read back: the conversation, and only the data blocks of a system message."""
    if message.role != "system":
        return message.content
    return "\n".join(block for _tag, block in _DATA_BLOCK.findall(message.content))


def compose_answer(messages: tuple[ChatMessage, ...]) -> str:
    """Pick the quotable sentences (never instructions) that share the most words with the last user message."""
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    question_terms = _terms(question)
    context: list[str] = []
    for message in messages[:-1] if messages and messages[-1].role == "user" else messages:
        context.extend(_sentences(_quotable(message)))
    scored = []
    for position, sentence in enumerate(context):
        overlap = len(question_terms & _terms(sentence))
        if overlap:
            scored.append((-overlap, position, sentence))
    best = sorted(scored)[:MAX_CONTEXT_SENTENCES]
    if best:
        picked = [sentence for _, _, sentence in sorted(best, key=lambda item: item[1])]
        return "From the context I was given: " + " ".join(picked)
    shown = question.strip()
    if len(shown) > 200:
        shown = shown[:200] + "…"
    return (
        f"I am {MODEL_ID}, Bytchat's offline model: I answer only from the context I am given "
        f'and found nothing in it about "{shown}". Configure a remote provider for open-ended answers.'
    )


class LocalProvider:
    name = "local"

    def __init__(self, *, word_delay: float = 0.0) -> None:
        self.word_delay = word_delay

    async def astream(self, request: CompletionRequest) -> AsyncIterator[StreamItem]:
        words = re.findall(r"\S+\s*", compose_answer(request.messages))
        finish_reason = "stop"
        if request.max_tokens is not None and len(words) > request.max_tokens:
            words = words[: request.max_tokens]
            finish_reason = "length"
        for word in words:
            if self.word_delay:
                await asyncio.sleep(self.word_delay)
            else:
                await asyncio.sleep(0)
            yield TextDelta(word)
        prompt_tokens = sum(estimate_tokens(m.content) for m in request.messages)
        yield StreamEnd(
            model=MODEL_ID,
            finish_reason=finish_reason,
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=len(words), estimated=True),
        )
