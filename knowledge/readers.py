"""Text from an upload's bytes (txt, md, pdf, html, docx): pure functions, and the bounded child that runs them.

Imports no Django, so `python -m knowledge.readers KIND SECONDS MEMORY_MB MAX_PAGES MAX_CHARS`
starts quickly: the file on stdin, a JSON object on stdout, either `{"pages": [[page, text], ...]}`
or `{"error": {"code", "template", "params"}}`; exit 4 when the memory limit was reached. Error
messages are English templates marked with gettext_noop; the parent translates them
(`ExtractionError.message`), so the child needs no translation catalogue.
"""

from __future__ import annotations

import io
import json
import re
import sys
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import _Cell

EXIT_MEMORY = 4


def gettext_noop(message: str) -> str:
    """Marks a message for makemessages; ExtractionError.message translates it in the parent."""
    return message


# Bounds for a DOCX archive before python-docx opens it: ZIP bombs need entry, size and ratio bounds
# (docs/reliability.md D7).
DOCX_MAX_ENTRIES = 1000
DOCX_MAX_UNCOMPRESSED = 50 * 1024 * 1024
DOCX_MAX_RATIO = 100
# Entries smaller than this are not ratio-checked: short repetitive XML compresses past 100x and cannot be a bomb.
DOCX_RATIO_MIN_SIZE = 1024 * 1024

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


class ExtractionError(Exception):
    """A document that cannot be turned into text; .code is stable, .message is user-facing and translated.

    `message` is an English template (marked with gettext_noop), filled with `params` once translated,
    so a child process can send the error back as data and the parent renders it in its language.
    """

    def __init__(self, code: str, message: str, params: dict[str, str | int] | None = None) -> None:
        super().__init__(code, message, params)
        self.code = code
        self.template = message
        self.params = params or {}

    @property
    def message(self) -> str:
        from django.utils.translation import gettext  # only in the parent: the child never renders messages

        text = gettext(self.template)
        return text % self.params if self.params else text

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str, dict[str, str | int]]]:
        """Pickle with every argument, so the error survives a trip back from a worker process."""
        return type(self), (self.code, self.template, self.params)

    def as_data(self) -> dict[str, object]:
        return {"code": self.code, "template": self.template, "params": self.params}


@dataclass(frozen=True)
class PageText:
    """The normalised text of one page (1-based for PDFs) or of a whole document (page None)."""

    page: int | None
    text: str


def decode_text(data: bytes) -> str:
    """Bytes as text: UTF-8 with or without BOM, or UTF-16/UTF-32 with a BOM; anything else is refused."""
    if data.startswith(_UTF32_BOMS):
        encoding, message = "utf-32", gettext_noop("The file is not valid UTF-32 text.")
    elif data.startswith(_UTF16_BOMS):
        encoding, message = "utf-16", gettext_noop("The file is not valid UTF-16 text.")
    else:
        encoding, message = "utf-8-sig", gettext_noop("The file is not valid UTF-8 text.")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ExtractionError("invalid", message) from exc


def extract_pages(data: bytes, kind: str, *, max_pages: int = 2000, max_chars: int = 5_000_000) -> list[PageText]:
    """The normalised text of a document of the given kind, one PageText per PDF page or one for the rest."""
    if kind in ("txt", "md"):
        pages = [PageText(page=None, text=_normalize(decode_text(data)))]
    elif kind == "html":
        pages = [PageText(page=None, text=_normalize(_html_text(decode_text(data))))]
    elif kind == "pdf":
        pages = _pdf_pages(data, max_pages=max_pages, max_chars=max_chars)
    elif kind == "docx":
        pages = [PageText(page=None, text=_normalize(_docx_text(data, max_chars=max_chars)))]
    else:
        raise ExtractionError("unsupported", gettext_noop("This kind of file is not supported."))
    total = sum(len(page.text) for page in pages)
    if total > max_chars:
        raise _too_many_chars(max_chars)
    if not any(page.text.strip() for page in pages):
        raise ExtractionError("no_text", gettext_noop("The document has no text."))
    return pages


def _too_many_chars(max_chars: int) -> ExtractionError:
    """The error for a document with more text than we index."""
    return ExtractionError(
        "too_large", gettext_noop("The document has more than %(max)s characters of text."), {"max": f"{max_chars:,}"}
    )


_LINE_BREAKS = str.maketrans({"\r": "\n", "\x0b": "\n", "\x0c": "\n", "\x85": "\n", "\u2028": "\n", "\u2029": "\n"})
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _normalize(text: str) -> str:
    """NFC text with \\n line ends, no control characters but \\n and \\t, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").translate(_LINE_BREAKS)
    text = _CONTROL.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_NEWLINES.sub("\n\n", text)
    return unicodedata.normalize("NFC", text).strip()


# --- PDF ---------------------------------------------------------------------------------------------------------


def _pdf_pages(data: bytes, *, max_pages: int, max_chars: int) -> list[PageText]:
    """One PageText per page; pypdf leaves catching its exceptions to the caller, so every failure is "invalid"."""
    from pypdf import PasswordType, PdfReader  # imported here: a text file's child never loads pypdf

    invalid = ExtractionError("invalid", gettext_noop("The PDF could not be read."))
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                # Many PDFs are encrypted only against editing, with an empty user password.
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:
                opened = False
            if not opened:
                raise ExtractionError("encrypted", gettext_noop("The PDF is encrypted."))
        count = len(reader.pages)
        if count > max_pages:
            raise ExtractionError("too_large", gettext_noop("The PDF has more than %(max)d pages."), {"max": max_pages})
        pages: list[PageText] = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            text = _normalize(page.extract_text() or "")
            total += len(text)
            if total > max_chars:
                raise _too_many_chars(max_chars)
            pages.append(PageText(page=number, text=text))
    except (ExtractionError, MemoryError):
        raise
    except Exception as exc:
        raise invalid from exc
    if not any(page.text for page in pages):
        raise ExtractionError("no_text", gettext_noop("The PDF has no extractable text (is it scanned?)."))
    return pages


# --- DOCX --------------------------------------------------------------------------------------------------------


def _check_docx_archive(data: bytes) -> None:
    """Refuse ZIP bombs before python-docx inflates anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except MemoryError:
        raise
    except Exception as exc:
        raise ExtractionError("invalid", gettext_noop("The Word document could not be read.")) from exc
    too_large = ExtractionError("too_large", gettext_noop("The Word document is too large once unpacked."))
    if len(entries) > DOCX_MAX_ENTRIES:
        raise too_large
    if sum(entry.file_size for entry in entries) > DOCX_MAX_UNCOMPRESSED:
        raise too_large
    for entry in entries:
        if entry.file_size >= DOCX_RATIO_MIN_SIZE and entry.file_size > DOCX_MAX_RATIO * max(entry.compress_size, 1):
            raise too_large


def _docx_text(data: bytes, *, max_chars: int) -> str:
    """Body paragraphs and table cells in document order; python-docx's parser does not resolve entities."""
    import docx

    _check_docx_archive(data)
    blocks: list[str] = []
    total = 0
    try:
        document = docx.Document(io.BytesIO(data))
        for block in _docx_blocks(document):
            total += len(block) + 2
            if total > max_chars:
                raise _too_many_chars(max_chars)
            blocks.append(block)
    except (ExtractionError, MemoryError):
        raise
    except Exception as exc:
        raise ExtractionError("invalid", gettext_noop("The Word document could not be read.")) from exc
    return "\n\n".join(blocks)


def _docx_blocks(container: DocxDocument | _Cell) -> Iterator[str]:
    """Text blocks of a document or cell: a paragraph each, a table row per line with its cells joined by " | "."""
    from docx.table import Table

    for item in container.iter_inner_content():
        if isinstance(item, Table):
            rows = []
            for row in item.rows:
                cells, seen = [], set()
                for cell in row.cells:
                    if id(cell._tc) in seen:  # a merged cell is repeated once per grid column it spans
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(" ".join(_docx_blocks(cell)).split()))
                if any(cells):
                    rows.append(" | ".join(cells))
            if rows:
                yield "\n".join(rows)
        elif item.text.strip():
            yield item.text


# --- HTML --------------------------------------------------------------------------------------------------------


class _VisibleText(HTMLParser):
    """Collects the text a reader would see; tags are never followed, so nothing is fetched."""

    SKIP = frozenset({"script", "style", "template", "noscript"})
    BLOCKS = frozenset(
        {
            "address", "article", "aside", "blockquote", "caption", "center", "dd", "details", "dialog", "div",
            "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
            "header", "hgroup", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table",
            "title", "ul", "body", "html",
        }
    )  # fmt: skip
    LINES = frozenset({"br", "tr"})
    CELLS = frozenset({"td", "th"})
    PREFORMATTED = frozenset({"pre", "textarea", "listing", "plaintext"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.preformatted = 0
        self.cells_in_row = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.PREFORMATTED:
            self.preformatted += 1
        self._break(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.PREFORMATTED:
            self.preformatted = max(0, self.preformatted - 1)
        if tag in self.BLOCKS:  # rows and cells break where the next one starts
            self._break(tag)

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        self.parts.append(data if self.preformatted else re.sub(r"[ \t\n\r\f]+", " ", data))

    def _break(self, tag: str) -> None:
        if self.skipping:
            return
        if tag in self.BLOCKS:
            self.parts.append("\n\n")
        elif tag in self.LINES:
            self.parts.append("\n")
        if tag in ("table", "tr"):
            self.cells_in_row = 0
        elif tag in self.CELLS:
            if self.cells_in_row:
                self.parts.append(" | ")
            self.cells_in_row += 1

    def text(self) -> str:
        """The collected text, each line stripped of the spaces that markup left around it."""
        lines = "".join(self.parts).split("\n")
        return "\n".join(line.strip(" ") for line in lines)


def _html_text(markup: str) -> str:
    """Visible text of an HTML document through the stdlib parser."""
    # Nothing after the last ">" can close a tag, and unclosed tags there make html.parser quadratic (CVE-2025-6069).
    end = markup.rfind(">") + 1
    markup = markup[:end] + markup[end:].replace("<", "&lt;")
    # Likewise a comment opened after the last "-->" can never close, and is quadratic too.
    closed = markup.rfind("-->")
    start = closed + 3 if closed >= 0 else 0
    markup = markup[:start] + markup[start:].replace("<!--", "&lt;!--")
    parser = _VisibleText()
    try:
        parser.feed(markup)
        parser.close()
    except MemoryError:
        raise
    except Exception as exc:
        raise ExtractionError("invalid", gettext_noop("The HTML could not be read.")) from exc
    return parser.text()


# --- The bounded child -------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """`python -m knowledge.readers KIND SECONDS MEMORY_MB MAX_PAGES MAX_CHARS`, the file on stdin."""
    from core.sandbox import limit_resources

    kind, seconds, memory_mb, max_pages, max_chars = argv[1], float(argv[2]), int(argv[3]), int(argv[4]), int(argv[5])
    limit_resources(seconds=seconds, memory_mb=memory_mb)
    try:
        data = sys.stdin.buffer.read()
        pages = extract_pages(data, kind, max_pages=max_pages, max_chars=max_chars)
        del data
        # ASCII JSON: any character, a lone surrogate from a PDF's font map included, survives the pipe.
        sys.stdout.write(json.dumps({"pages": [[page.page, page.text] for page in pages]}))
    except ExtractionError as exc:
        sys.stdout.write(json.dumps({"error": exc.as_data()}))
    except MemoryError:
        return EXIT_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
