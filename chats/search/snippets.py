"""A hit's snippet: the part of the message around its first match, HTML-escaped, the matching words in
<mark>. Words match as the index stems them, roughly: case, accents and common English endings aside."""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Sequence

SNIPPET_CHARS = 240
_WORD = re.compile(r"\w+", re.UNICODE)
_ENDINGS = ("ing", "ed", "ly", "s")
_ES_AFTER = ("s", "x", "z", "ch", "sh")


def word_key(word: str) -> str:
    folded = "".join(c for c in unicodedata.normalize("NFKD", word.casefold()) if not unicodedata.combining(c))
    if folded.endswith("es") and folded[:-2].endswith(_ES_AFTER) and len(folded) > 4:
        return folded[:-2]
    for ending in _ENDINGS:
        if folded.endswith(ending) and len(folded) - len(ending) >= 3:
            return folded[: -len(ending)]
    return folded


def snippet(text: str, terms: Sequence[str]) -> str:
    keys = {word_key(term) for term in terms}
    matches = [m for m in _WORD.finditer(text) if word_key(m.group()) in keys]
    start = 0
    if matches and matches[0].start() > SNIPPET_CHARS // 3:
        start = text.rfind(" ", 0, matches[0].start() - SNIPPET_CHARS // 3) + 1
    end = start + SNIPPET_CHARS
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start else end
    parts: list[str] = ["…" if start > 0 else ""]
    position = start
    for match in matches:
        if match.start() < start:
            continue
        if match.end() > end:
            break
        parts += [html.escape(text[position : match.start()]), "<mark>", html.escape(match.group()), "</mark>"]
        position = match.end()
    parts.append(html.escape(text[position:end]))
    if end < len(text):
        parts.append("…")
    return " ".join("".join(parts).split())
