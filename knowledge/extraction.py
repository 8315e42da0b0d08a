"""Text from uploads (txt, md, pdf, html, docx) and its chunks: pure functions, no models, no network."""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser

import docx
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from docx.document import Document as DocxDocument
from docx.table import Table, _Cell
from pypdf import PasswordType, PdfReader

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset({".txt", ".md", ".pdf", ".html", ".htm", ".docx"})
_KINDS = {".txt": "txt", ".md": "md", ".pdf": "pdf", ".html": "html", ".htm": "html", ".docx": "docx"}

# Bounds for a DOCX archive before python-docx opens it (RELIABILITY D7; ZIP bombs need entry, size and ratio bounds).
DOCX_MAX_ENTRIES = 1000
DOCX_MAX_UNCOMPRESSED = 50 * 1024 * 1024
DOCX_MAX_RATIO = 100
# Entries smaller than this are not ratio-checked: short repetitive XML compresses past 100x and cannot be a bomb.
DOCX_RATIO_MIN_SIZE = 1024 * 1024

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
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF32_BOMS = (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


class ExtractionError(Exception):
    """A document that cannot be turned into text; the message is user-facing, .code is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ExtractionError], tuple[str, str]]:
        """Pickle with both arguments, so the error survives a trip back from a worker process."""
        return type(self), (self.code, self.message)


@dataclass(frozen=True)
class PageText:
    """The normalised text of one page (1-based for PDFs) or of a whole document (page None)."""

    page: int | None
    text: str


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


def decode_text(data: bytes) -> str:
    """Bytes as text: UTF-8 with or without BOM, or UTF-16/UTF-32 with a BOM; anything else is refused."""
    if data.startswith(_UTF32_BOMS):
        encoding, message = "utf-32", _("The file is not valid UTF-32 text.")
    elif data.startswith(_UTF16_BOMS):
        encoding, message = "utf-16", _("The file is not valid UTF-16 text.")
    else:
        encoding, message = "utf-8-sig", _("The file is not valid UTF-8 text.")
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
        raise ExtractionError("unsupported", _("This kind of file is not supported."))
    total = sum(len(page.text) for page in pages)
    if total > max_chars:
        raise _too_many_chars(max_chars)
    if not any(page.text.strip() for page in pages):
        raise ExtractionError("no_text", _("The document has no text."))
    return pages


def _too_many_chars(max_chars: int) -> ExtractionError:
    """The error for a document with more text than we index."""
    return ExtractionError(
        "too_large", _("The document has more than %(max)s characters of text.") % {"max": f"{max_chars:,}"}
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
    invalid = ExtractionError("invalid", _("The PDF could not be read."))
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                # Many PDFs are encrypted only against editing, with an empty user password.
                opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
            except Exception:
                opened = False
            if not opened:
                raise ExtractionError("encrypted", _("The PDF is encrypted."))
        count = len(reader.pages)
        if count > max_pages:
            raise ExtractionError("too_large", _("The PDF has more than %(max)d pages.") % {"max": max_pages})
        pages: list[PageText] = []
        total = 0
        for number, page in enumerate(reader.pages, start=1):
            text = _normalize(page.extract_text() or "")
            total += len(text)
            if total > max_chars:
                raise _too_many_chars(max_chars)
            pages.append(PageText(page=number, text=text))
    except ExtractionError:
        raise
    except Exception as exc:
        raise invalid from exc
    if not any(page.text for page in pages):
        raise ExtractionError("no_text", _("The PDF has no extractable text (is it scanned?)."))
    return pages


# --- DOCX --------------------------------------------------------------------------------------------------------


def _check_docx_archive(data: bytes) -> None:
    """Refuse ZIP bombs before python-docx inflates anything."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
    except Exception as exc:
        raise ExtractionError("invalid", _("The Word document could not be read.")) from exc
    too_large = ExtractionError("too_large", _("The Word document is too large once unpacked."))
    if len(entries) > DOCX_MAX_ENTRIES:
        raise too_large
    if sum(entry.file_size for entry in entries) > DOCX_MAX_UNCOMPRESSED:
        raise too_large
    for entry in entries:
        if entry.file_size >= DOCX_RATIO_MIN_SIZE and entry.file_size > DOCX_MAX_RATIO * max(entry.compress_size, 1):
            raise too_large


def _docx_text(data: bytes, *, max_chars: int) -> str:
    """Body paragraphs and table cells in document order; python-docx's parser does not resolve entities."""
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
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError("invalid", _("The Word document could not be read.")) from exc
    return "\n\n".join(blocks)


def _docx_blocks(container: DocxDocument | _Cell) -> Iterator[str]:
    """Text blocks of a document or cell: a paragraph each, a table row per line with its cells joined by " | "."""
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
    except Exception as exc:
        raise ExtractionError("invalid", _("The HTML could not be read.")) from exc
    return parser.text()


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
