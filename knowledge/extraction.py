"""Uploads as text: the kind of a file, its text read in a bounded child process, and its chunks.

The readers (pypdf, python-docx, html.parser) run in `python -m knowledge.readers` under
KNOWLEDGE_EXTRACT_SECONDS of CPU and wall clock and KNOWLEDGE_EXTRACT_MEMORY_MB of address space
(see core/sandbox.py), so a hostile file ends as a failed document and never takes the worker down.
"""

from __future__ import annotations

import json
import logging
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from core.sandbox import SandboxTimeout, run_bounded
from knowledge.readers import (
    _UTF8_BOM,
    _UTF16_BOMS,
    _UTF32_BOMS,
    EXIT_MEMORY,
    ExtractionError,
    PageText,
    decode_text,
    extract_pages,
)

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "ExtractionError",
    "PageText",
    "TextChunk",
    "chunk_pages",
    "decode_text",
    "detect_kind",
    "extract_pages",
    "extract_pages_bounded",
]

logger = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".txt", ".md", ".pdf", ".html", ".htm", ".docx"})
_KINDS = {".txt": "txt", ".md": "md", ".pdf": "pdf", ".html": "html", ".htm": "html", ".docx": "docx"}

_BINARY_MAGIC = (
    (b"%PDF-", gettext_noop("a PDF")),
    (b"PK\x03\x04", gettext_noop("a ZIP archive")),
    (b"PK\x05\x06", gettext_noop("a ZIP archive")),
    (b"\x7fELF", gettext_noop("an executable")),
    (b"MZ\x90\x00", gettext_noop("an executable")),
    (b"\x89PNG\r\n\x1a\n", gettext_noop("a PNG image")),
    (b"\xff\xd8\xff", gettext_noop("a JPEG image")),
    (b"GIF87a", gettext_noop("a GIF image")),
    (b"GIF89a", gettext_noop("a GIF image")),
    (b"\x1f\x8b", gettext_noop("a gzip archive")),
)
_NOT_TEXT = gettext_noop("binary data")


@dataclass(frozen=True)
class TextChunk:
    """One retrieval chunk: its place in the document, its page and its text."""

    position: int
    page: int | None
    text: str


def detect_kind(filename: str, head: bytes) -> str:
    """The kind ("txt", "md", "pdf", "html", "docx") from the extension, verified against the first bytes."""
    dot = filename.rfind(".")
    extension = filename[dot:].lower() if dot > 0 else ""
    if extension not in SUPPORTED_EXTENSIONS:
        allowed = ".txt, .md, .pdf, .html, .docx"
        if not extension:
            message = _("The file has no extension; upload a %(allowed)s file.") % {"allowed": allowed}
        else:
            message = _('Files of type "%(extension)s" are not supported; upload a %(allowed)s file.') % {
                "extension": extension[:20],
                "allowed": allowed,
            }
        raise ExtractionError("unsupported", message)
    kind = _KINDS[extension]
    if kind == "pdf":
        if not head.removeprefix(_UTF8_BOM).lstrip().startswith(b"%PDF-"):
            raise ExtractionError("unsupported", _("The file claims to be a PDF but is not one."))
    elif kind == "docx":
        if not head.startswith(b"PK\x03\x04"):
            raise ExtractionError("unsupported", _("The file claims to be a Word document (.docx) but is not one."))
    else:
        found = _binary_signature(head)
        if found:
            raise ExtractionError(
                "unsupported", _("The file claims to be text but is %(found)s.") % {"found": _(found)}
            )
    return kind


def _binary_signature(head: bytes) -> str:
    """What binary format the bytes look like, or "" when they can be text."""
    if head.startswith(_UTF32_BOMS + _UTF16_BOMS):
        return ""  # UTF-16/32 text is full of NUL bytes
    stripped = head.removeprefix(_UTF8_BOM).lstrip()
    for magic, name in _BINARY_MAGIC:
        if stripped.startswith(magic):
            return name
    if b"\x00" in head:
        return _NOT_TEXT
    return ""


def extract_pages_bounded(
    data: bytes,
    kind: str,
    *,
    seconds: float,
    memory_mb: int,
    on_wait: Callable[[], None] | None = None,
    wait_step: float = 5.0,
    max_pages: int = 2000,
    max_chars: int = 5_000_000,
) -> list[PageText]:
    """extract_pages in a child process under CPU, memory and wall-clock limits; every failure an ExtractionError.

    OSError when the child cannot start at all: that is the server's fault, not the file's, so it is retried.
    """
    args = [kind, str(seconds), str(memory_mb), str(max_pages), str(max_chars)]
    too_slow = ExtractionError(
        "timeout",
        gettext_noop("Reading the file took longer than the limit of %(seconds)s seconds."),
        {"seconds": f"{seconds:g}"},
    )
    try:
        completed = run_bounded(
            "knowledge.readers", args, data=data, seconds=seconds, on_wait=on_wait, wait_step=wait_step
        )
    except SandboxTimeout:
        raise too_slow from None
    if completed.returncode in (-signal.SIGXCPU, -signal.SIGKILL):  # past RLIMIT_CPU's soft, then hard, limit
        raise too_slow
    if completed.returncode == EXIT_MEMORY:
        raise ExtractionError(
            "too_much_memory",
            gettext_noop("Reading the file needed more memory than the limit of %(mb)s MB."),
            {"mb": memory_mb},
        )
    try:
        if completed.returncode != 0:
            raise ValueError(f"exit status {completed.returncode}")
        result = json.loads(completed.stdout)
        if "error" in result:
            error = result["error"]
            raise ExtractionError(str(error["code"]), str(error["template"]), dict(error["params"]))
        return [PageText(page=page, text=text) for page, text in result["pages"]]
    except ExtractionError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning(
            "text extraction (%s) failed: %s; %s", kind, exc, completed.stderr[-2000:].decode(errors="replace")
        )
        raise ExtractionError(
            "crashed", gettext_noop("The file could not be read: its reader stopped unexpectedly.")
        ) from exc


# --- Chunking ----------------------------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
# A sentence ends at . ! ? … (plus closing quotes or brackets) before whitespace or a Spanish opening ¿ ¡.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'\u201d\u2019»)\]]*(?:\s+|(?=[¿¡]))")


@dataclass
class _Unit:
    """A sentence (or a piece of an over-long one) and the paragraph it belongs to."""

    paragraph: int
    text: str


def chunk_pages(pages: list[PageText], *, target_chars: int = 1000, overlap_chars: int = 150) -> list[TextChunk]:
    """Whole sentences packed into chunks of at most target_chars, overlapping by whole sentences, page by page."""
    if target_chars <= 0 or not 0 <= overlap_chars < target_chars:
        raise ValueError("Need target_chars > 0 and 0 <= overlap_chars < target_chars.")
    chunks: list[TextChunk] = []
    for page in pages:
        for text in _pack(_units(page.text, target_chars), target_chars, overlap_chars):
            chunks.append(TextChunk(position=len(chunks), page=page.page, text=text))
    return chunks


def _units(text: str, target_chars: int) -> list[_Unit]:
    """The page's sentences in order, over-long ones split on whitespace (and words longer than a chunk cut)."""
    units: list[_Unit] = []
    for index, paragraph in enumerate(p.strip() for p in _PARAGRAPH_BREAK.split(text)):
        for sentence in _sentences(paragraph):
            if len(sentence) <= target_chars:
                units.append(_Unit(index, sentence))
            else:
                units.extend(_Unit(index, piece) for piece in _split_long(sentence, target_chars))
    return units


def _sentences(paragraph: str) -> Iterator[str]:
    """Sentences of one paragraph, each keeping its closing punctuation."""
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        sentence = paragraph[start : match.end()].strip()
        start = match.end()
        if sentence:
            yield sentence
    rest = paragraph[start:].strip()
    if rest:
        yield rest


def _split_long(sentence: str, target_chars: int) -> Iterator[str]:
    """Pieces of at most target_chars, cut between words; a single word longer than that is cut where it must be."""
    piece = ""
    for word in sentence.split():
        while len(word) > target_chars:
            if piece:
                yield piece
                piece = ""
            yield word[:target_chars]
            word = word[target_chars:]
        if piece and len(piece) + 1 + len(word) > target_chars:
            yield piece
            piece = ""
        piece = f"{piece} {word}" if piece else word
    if piece:
        yield piece


def _join(units: list[_Unit]) -> str:
    """Units as text: a space within a paragraph, a blank line between paragraphs."""
    parts: list[str] = []
    for index, unit in enumerate(units):
        if index:
            parts.append(" " if units[index - 1].paragraph == unit.paragraph else "\n\n")
        parts.append(unit.text)
    return "".join(parts)


def _length_with(length: int, current: list[_Unit], unit: _Unit) -> int:
    """len(_join([*current, unit])) from len(_join(current)), without rebuilding the text."""
    if not current:
        return len(unit.text)
    return length + (1 if current[-1].paragraph == unit.paragraph else 2) + len(unit.text)


def _pack(units: list[_Unit], target_chars: int, overlap_chars: int) -> Iterator[str]:
    """Greedy packing; each new chunk starts with trailing sentences of the last one, never all of them."""
    current: list[_Unit] = []
    length = 0  # len(_join(current)), kept as units are added: rebuilding it each time was quadratic
    for unit in units:
        if current and _length_with(length, current, unit) > target_chars:
            yield _join(current)
            current = _overlap(current, overlap_chars)
            length = len(_join(current))
            while current and _length_with(length, current, unit) > target_chars:
                current = current[1:]
                length = len(_join(current))
        length = _length_with(length, current, unit)
        current.append(unit)
    if current:
        yield _join(current)


def _overlap(units: list[_Unit], overlap_chars: int) -> list[_Unit]:
    """The longest run of trailing units (not all of them) whose text fits in overlap_chars."""
    tail: list[_Unit] = []
    for unit in reversed(units[1:]):
        if len(_join([unit, *tail])) > overlap_chars:
            break
        tail.insert(0, unit)
    return tail
