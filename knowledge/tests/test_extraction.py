"""Extraction and chunking of uploads: each format, hostile files, and the chunk boundaries."""

from __future__ import annotations

import io
import itertools
import pickle
import re
import socket
import time
import zipfile
from collections.abc import Iterator

import docx
import pytest
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from knowledge.extraction import (
    SUPPORTED_EXTENSIONS,
    ExtractionError,
    PageText,
    TextChunk,
    chunk_pages,
    decode_text,
    detect_kind,
    extract_pages,
)

SPANISH = "El niño comió piña en Málaga. ¿Qué más? ¡Añádelo al índice, por favor! Pingüino, acción, Ñandú."


# --- builders ----------------------------------------------------------------------------------------------------


def make_pdf(pages: list[str], *, draw_shapes: bool = False) -> bytes:
    """A real PDF with one page per entry; an empty entry makes a page without text."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, invariant=1)
    for text in pages:
        if text:
            pdf.drawString(72, 760, text)
        if draw_shapes:
            pdf.rect(72, 300, 200, 200, fill=1)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def encrypt_pdf(data: bytes, user_password: str, owner_password: str | None = None) -> bytes:
    """The same PDF, encrypted with pypdf."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password, owner_password)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def make_docx() -> bytes:
    """A real .docx with paragraphs around a table."""
    document = docx.Document()
    document.add_heading("Informe anual", level=1)
    document.add_paragraph("Primer párrafo antes de la tabla.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Producto"
    table.cell(0, 1).text = "Precio"
    table.cell(1, 0).text = "Café"
    table.cell(1, 1).text = "2,50 €"
    document.add_paragraph("Último párrafo después de la tabla.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def replace_zip_entry(data: bytes, name: str, content: bytes) -> bytes:
    """A copy of a ZIP archive with one entry's content replaced."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(entry.filename, content if entry.filename == name else source.read(entry.filename))
    return buffer.getvalue()


def docx_document_xml(doctype: str, body_text: str) -> bytes:
    """A word/document.xml with the given DOCTYPE and one paragraph whose text may use entities."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f"{doctype}\n"
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>Texto visible.</w:t></w:r></w:p>"
        f"<w:p><w:r><w:t>{body_text}</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


def zip_with_zeros(size: int) -> bytes:
    """A ZIP whose word/document.xml is `size` zero bytes, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w") as entry:
            block = b"\0" * (1024 * 1024)
            for _ in range(size // len(block)):
                entry.write(block)
    return buffer.getvalue()


def only_text(pages: list[PageText]) -> str:
    """The single page's text, asserting there is exactly one page without a number."""
    assert len(pages) == 1
    assert pages[0].page is None
    return pages[0].text


def raises_code(code: str, func, *args, **kwargs) -> ExtractionError:
    """Call func and return the ExtractionError it raised, after checking its code and message."""
    with pytest.raises(ExtractionError) as info:
        func(*args, **kwargs)
    assert info.value.code == code
    assert str(info.value).strip()
    assert "Traceback" not in str(info.value)
    return info.value


# --- detect_kind -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "head", "kind"),
    [
        ("notes.txt", b"hello", "txt"),
        ("README.MD", b"# Title", "md"),
        ("page.html", b"<!doctype html><p>x</p>", "html"),
        ("page.htm", b"<p>x</p>", "html"),
        ("paper.pdf", b"%PDF-1.7\n", "pdf"),
        ("Paper.PDF", b"\xef\xbb\xbf \r\n%PDF-1.4", "pdf"),
        ("report.docx", b"PK\x03\x04rest", "docx"),
        ("wide.txt", "hola".encode("utf-16"), "txt"),
    ],
)
def test_detect_kind_accepts_supported_files_whose_content_matches(filename, head, kind):
    assert detect_kind(filename, head) == kind


def test_extraction_error_carries_code_and_message_and_pickles():
    error = ExtractionError("encrypted", "The PDF is encrypted.")
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 (bytes we just made)
    assert (copy.code, str(copy)) == ("encrypted", "The PDF is encrypted.")
    assert ExtractionError(code="invalid", message="Bad.").code == "invalid"


def test_supported_extensions_are_the_documented_set():
    assert frozenset({".txt", ".md", ".pdf", ".html", ".htm", ".docx"}) == SUPPORTED_EXTENSIONS


@pytest.mark.parametrize(
    ("filename", "head"),
    [
        ("fake.pdf", b"<!doctype html><html><body>not a pdf</body></html>"),
        ("fake.pdf", b"PK\x03\x04\x14\x00"),
        ("fake.pdf", b"\x7fELF\x02\x01\x01"),
        ("fake.pdf", b""),
    ],
)
def test_detect_kind_refuses_a_pdf_that_is_not_a_pdf(filename, head):
    error = raises_code("unsupported", detect_kind, filename, head)
    assert str(error) == "The file claims to be a PDF but is not one."


@pytest.mark.parametrize(
    "head",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\x7fELF\x02\x01\x01\x00",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"GIF89a\x01\x00",
        b"%PDF-1.4\n%\xe2\xe3",
        b"PK\x03\x04\x14\x00",
        b"plain start then a NUL \x00 byte",
    ],
)
def test_detect_kind_refuses_binary_content_named_as_text(head):
    for filename in ("image.txt", "notes.md", "page.html"):
        error = raises_code("unsupported", detect_kind, filename, head)
        assert str(error).startswith("The file claims to be text but is ")


def test_detect_kind_refuses_a_docx_that_is_not_a_zip():
    error = raises_code("unsupported", detect_kind, "report.docx", b"%PDF-1.7")
    assert "Word document" in str(error)


@pytest.mark.parametrize("filename", ["setup.exe", "archive.zip", "photo.png", "noextension", "doc.pdf.exe", ".pdf"])
def test_detect_kind_refuses_unsupported_extensions(filename):
    error = raises_code("unsupported", detect_kind, filename, b"MZ\x90\x00")
    assert "upload a .txt, .md, .pdf, .html, .docx file" in str(error)


# --- text --------------------------------------------------------------------------------------------------------


def test_decode_text_reads_utf8_with_and_without_bom():
    assert decode_text(SPANISH.encode()) == SPANISH
    assert decode_text(b"\xef\xbb\xbf" + SPANISH.encode()) == SPANISH


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-16-le", "utf-32"])
def test_decode_text_reads_utf16_and_utf32_with_bom(encoding):
    data = SPANISH.encode(encoding)
    if encoding in ("utf-16-be", "utf-16-le"):
        data = "\ufeff".encode(encoding) + data
    assert decode_text(data) == SPANISH
    assert only_text(extract_pages(data, "txt")) == SPANISH


def test_decode_text_refuses_latin1_bytes():
    data = "Año de la piña".encode("latin-1")
    error = raises_code("invalid", decode_text, data)
    assert str(error) == "The file is not valid UTF-8 text."
    raises_code("invalid", extract_pages, data, "txt")


def test_utf16_text_file_passes_detection_and_extraction():
    data = "Línea uno\r\nLínea dos".encode("utf-16")
    assert detect_kind("notas.txt", data[:4096]) == "txt"
    assert only_text(extract_pages(data, "txt")) == "Línea uno\nLínea dos"


def test_spanish_accented_text_round_trips_through_txt_and_md():
    for kind in ("txt", "md"):
        assert only_text(extract_pages(SPANISH.encode(), kind)) == SPANISH


def test_decomposed_accents_are_composed():
    decomposed = "nin\u0303o cafe\u0301"
    assert only_text(extract_pages(decomposed.encode(), "txt")) == "niño café"


def test_text_is_normalised():
    raw = "uno\r\ndos\x00\x07 tres\rcuatro\t5   \n\n\n\n\ncinco\n \n \n\nseis\x0csiete"
    assert only_text(extract_pages(raw.encode(), "txt")) == "uno\ndos tres\ncuatro\t5\n\ncinco\n\nseis\nsiete"


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\n\t \r\n", b"\x00\x00", b"\xef\xbb\xbf  "])
def test_empty_or_whitespace_text_has_no_text(data):
    error = raises_code("no_text", extract_pages, data, "txt")
    assert str(error) == "The document has no text."


def test_text_over_max_chars_is_too_large():
    raises_code("too_large", extract_pages, b"x" * 101, "txt", max_chars=100)
    assert only_text(extract_pages(b"x" * 100, "txt", max_chars=100)) == "x" * 100


def test_unknown_kind_is_unsupported():
    raises_code("unsupported", extract_pages, b"data", "exe")


# --- HTML --------------------------------------------------------------------------------------------------------


@pytest.fixture
def canary() -> Iterator[socket.socket]:
    """A loopback listener nothing should connect to."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield listener
    listener.close()


def assert_no_connection(listener: socket.socket) -> None:
    """The listener's backlog is empty: nobody connected."""
    with pytest.raises(BlockingIOError):
        connection, _ = listener.accept()
        connection.close()


def test_html_keeps_visible_text_and_fetches_nothing(canary):
    port = canary.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    markup = f"""<!doctype html>
    <html><head>
      <title>Guía   de usuario</title>
      <meta charset="utf-8">
      <link rel="stylesheet" href="{url}/style.css">
      <style>body {{ background: url({url}/bg.png); }} .secret {{ color: white }}</style>
      <script src="{url}/app.js"></script>
      <script>alert(1); fetch("{url}/steal");</script>
    </head>
    <body>
      <h1>Bienvenida</h1>
      <p>Caf&eacute; &amp; t&#233; &lt;gratis&gt;<br>segunda línea</p>
      <img src="{url}/x" alt="pixel">
      <iframe src="{url}/frame"></iframe>
      <template><p>plantilla oculta</p></template>
      <noscript>activa JavaScript</noscript>
      <!-- comentario -->
      <ul><li>uno</li><li>dos</li></ul>
      <table><tr><th>Nombre</th><th>Edad</th></tr><tr><td>Ana</td><td>30</td></tr></table>
      <table><tr><td></td><td>| celda</td></tr></table>
      <p class="secret" style="display:none">texto oculto</p>
    </body></html>"""
    text = only_text(extract_pages(markup.encode(), "html"))
    assert text == (
        "Guía de usuario\n\nBienvenida\n\nCafé & té <gratis>\nsegunda línea\n\nuno\n\ndos\n\n"
        "Nombre | Edad\nAna | 30\n\n| | celda\n\ntexto oculto"
    )
    for hidden in ("alert", "fetch", "background", "plantilla", "JavaScript", "comentario", "127.0.0.1"):
        assert hidden not in text
    assert_no_connection(canary)


def test_html_without_visible_text_has_no_text():
    markup = b"<html><head><script>var a = 1;</script><style>p{}</style></head><body> <img src=x> </body></html>"
    raises_code("no_text", extract_pages, markup, "html")


def test_html_with_unclosed_tags_at_the_end_is_parsed_quickly():
    started = time.monotonic()
    text = only_text(extract_pages(b"<p>Hola</p>" + b"<a" * 100_000, "html"))
    assert time.monotonic() - started < 5  # about 30 s on CPython 3.11.7 without the guard
    assert text.startswith("Hola\n\n<a<a")


def test_html_the_parser_chokes_on_is_invalid():
    error = raises_code("invalid", extract_pages, b"<p>x</p><![<![ >", "html")
    assert str(error) == "The HTML could not be read."


def test_html_unclosed_script_drops_the_rest_instead_of_leaking_code():
    text = only_text(extract_pages(b"<p>antes</p><script>document.write('x')", "html"))
    assert text == "antes"


# --- PDF ---------------------------------------------------------------------------------------------------------


def test_pdf_extracts_each_page_with_its_number():
    data = make_pdf(["Primera página del informe.", "Second page of the report."])
    assert detect_kind("informe.pdf", data[:4096]) == "pdf"
    pages = extract_pages(data, "pdf")
    assert pages == [
        PageText(page=1, text="Primera página del informe."),
        PageText(page=2, text="Second page of the report."),
    ]


def test_pdf_keeps_blank_pages_numbered_among_text_pages():
    pages = extract_pages(make_pdf(["uno", "", "tres"]), "pdf")
    assert [(page.page, page.text) for page in pages] == [(1, "uno"), (2, ""), (3, "tres")]
    assert [chunk.page for chunk in chunk_pages(pages)] == [1, 3]


def test_pdf_encrypted_with_a_password_is_refused():
    data = encrypt_pdf(make_pdf(["secreto"]), "secret")
    error = raises_code("encrypted", extract_pages, data, "pdf")
    assert str(error) == "The PDF is encrypted."


def test_pdf_encrypted_with_an_empty_user_password_still_extracts():
    data = encrypt_pdf(make_pdf(["Solo protegido contra edición."]), "", "owner-password")
    assert PdfReader(io.BytesIO(data)).is_encrypted
    assert extract_pages(data, "pdf") == [PageText(page=1, text="Solo protegido contra edición.")]


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-40],
        lambda data: b"%PDF-1.4\n" + bytes(range(256)) * 20,
        lambda data: b"%PDF-1.7\n<html><body>nope</body></html>",
        lambda data: b"",
    ],
    ids=["truncated-half", "truncated-trailer", "garbage", "html-body", "empty"],
)
def test_pdf_that_cannot_be_parsed_is_invalid(corrupt):
    data = corrupt(make_pdf(["Texto", "Más texto"]))
    error = raises_code("invalid", extract_pages, data, "pdf")
    assert str(error) == "The PDF could not be read."


def test_pdf_with_only_blank_or_drawn_pages_has_no_text():
    for data in (make_pdf(["", ""]), make_pdf(["", ""], draw_shapes=True)):
        error = raises_code("no_text", extract_pages, data, "pdf")
        assert str(error) == "The PDF has no extractable text (is it scanned?)."


def test_pdf_over_max_pages_is_too_large():
    data = make_pdf(["uno", "dos", "tres"])
    raises_code("too_large", extract_pages, data, "pdf", max_pages=2)
    assert len(extract_pages(data, "pdf", max_pages=3)) == 3


def test_pdf_over_max_chars_is_too_large():
    raises_code("too_large", extract_pages, make_pdf(["a" * 60, "b" * 60]), "pdf", max_chars=100)


# --- DOCX --------------------------------------------------------------------------------------------------------


def test_docx_extracts_paragraphs_and_table_cells_in_order():
    data = make_docx()
    assert detect_kind("informe.docx", data[:4096]) == "docx"
    text = only_text(extract_pages(data, "docx"))
    assert text == (
        "Informe anual\n\nPrimer párrafo antes de la tabla.\n\n"
        "Producto | Precio\nCafé | 2,50 €\n\nÚltimo párrafo después de la tabla."
    )


def test_docx_merged_cells_are_read_once():
    document = docx.Document()
    table = document.add_table(rows=2, cols=3)
    table.cell(0, 0).merge(table.cell(0, 2)).text = "Título combinado"
    for column, value in enumerate(["a", "b", "c"]):
        table.cell(1, column).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    assert only_text(extract_pages(buffer.getvalue(), "docx")) == "Título combinado\na | b | c"


def test_docx_zip_bomb_is_too_large():
    data = zip_with_zeros(60 * 1024 * 1024)
    assert len(data) < 200 * 1024
    error = raises_code("too_large", extract_pages, data, "docx")
    assert str(error) == "The Word document is too large once unpacked."


def test_docx_entry_with_extreme_compression_ratio_is_too_large():
    raises_code("too_large", extract_pages, zip_with_zeros(5 * 1024 * 1024), "docx")


def test_docx_with_too_many_entries_is_too_large():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(1001):
            archive.writestr(f"word/media/{index}.xml", "")
    raises_code("too_large", extract_pages, buffer.getvalue(), "docx")


def test_docx_with_repetitive_text_is_not_mistaken_for_a_bomb():
    document = docx.Document()
    document.add_paragraph("=" * 20_000)
    buffer = io.BytesIO()
    document.save(buffer)
    assert only_text(extract_pages(buffer.getvalue(), "docx")) == "=" * 20_000


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04" + b"\x00" * 64,
        replace_zip_entry(make_docx(), "word/document.xml", b"<w:document><unclosed"),
        b"not a zip at all",
    ],
    ids=["broken-zip", "broken-xml", "not-a-zip"],
)
def test_docx_that_cannot_be_read_is_invalid(data):
    error = raises_code("invalid", extract_pages, data, "docx")
    assert str(error) == "The Word document could not be read."


def test_zip_that_is_not_a_word_document_is_invalid():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hola")
    raises_code("invalid", extract_pages, buffer.getvalue(), "docx")


def test_docx_xxe_does_not_leak_local_files():
    doctype = '<!DOCTYPE w:document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    data = replace_zip_entry(make_docx(), "word/document.xml", docx_document_xml(doctype, "&xxe;"))
    try:
        text = only_text(extract_pages(data, "docx"))
    except ExtractionError:
        return
    assert "Texto visible." in text
    assert "root:" not in text
    assert "/bin/" not in text


def test_docx_billion_laughs_is_not_expanded():
    entities = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    doctype = f"<!DOCTYPE w:document [{''.join(entities)}]>"
    data = replace_zip_entry(make_docx(), "word/document.xml", docx_document_xml(doctype, "&lol9;"))
    try:
        text = only_text(extract_pages(data, "docx"))
    except ExtractionError:
        return
    assert len(text) < 1000


# --- chunking ----------------------------------------------------------------------------------------------------


def numbered_sentences(count: int) -> list[str]:
    """Distinct sentences of varied length, deterministic."""
    return [f"Sentence {n} talks about topic {n % 7}{' and more' * (n % 9)}." for n in range(count)]


def sentences_of(text: str) -> list[str]:
    """The numbered sentences in a chunk, in order."""
    return re.findall(r"Sentence \d+ talks about topic \d(?: and more)*\.", text)


def test_chunks_hold_whole_sentences_and_overlap():
    sentences = numbered_sentences(200)
    chunks = chunk_pages([PageText(page=None, text=" ".join(sentences))], target_chars=400, overlap_chars=120)
    assert len(chunks) > 10
    for chunk in chunks:
        assert len(chunk.text) <= 400
        assert chunk.text == " ".join(sentences_of(chunk.text))  # nothing but whole sentences
    for previous, current in itertools.pairwise(chunks):
        shared = [s for s in sentences_of(current.text) if s in sentences_of(previous.text)]
        assert shared, "consecutive chunks overlap"
        assert current.text.startswith(" ".join(shared))
        assert sentences_of(previous.text)[-len(shared) :] == shared
        assert len(" ".join(shared)) <= 120
    covered = [s for chunk in chunks for s in sentences_of(chunk.text)]
    assert set(covered) == set(sentences)


def test_chunk_positions_are_sequential_and_pages_preserved():
    pages = [
        PageText(page=1, text=" ".join(f"Uno {n}." for n in range(300))),
        PageText(page=2, text=""),
        PageText(page=3, text=" ".join(f"Tres {n}." for n in range(300))),
    ]
    chunks = chunk_pages(pages, target_chars=200, overlap_chars=30)
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
    assert {chunk.page for chunk in chunks} == {1, 3}
    pages_in_order = [chunk.page for chunk in chunks]
    assert pages_in_order == sorted(pages_in_order)
    for chunk in chunks:
        assert ("Uno" in chunk.text) != ("Tres" in chunk.text), "a chunk never spans pages"
        assert ("Uno" in chunk.text) == (chunk.page == 1)


def test_chunks_keep_paragraph_breaks():
    text = "Primer párrafo. Tiene dos frases.\n\nSegundo párrafo.\n\n\n\nTercero."
    chunks = chunk_pages([PageText(page=None, text=text)])
    assert chunks == [
        TextChunk(position=0, page=None, text="Primer párrafo. Tiene dos frases.\n\nSegundo párrafo.\n\nTercero.")
    ]


def test_chunks_split_spanish_sentences_with_opening_marks():
    text = "¿Qué hora es? ¡Son las tres! Él respondió… Bien.¿Dónde?¡Aquí!"
    chunks = chunk_pages([PageText(page=None, text=text)], target_chars=16, overlap_chars=0)
    assert [chunk.text for chunk in chunks] == [
        "¿Qué hora es?",
        "¡Son las tres!",
        "Él respondió…",
        "Bien. ¿Dónde?",
        "¡Aquí!",
    ]


def test_sentences_with_closing_quotes_stay_whole():
    text = "Dijo «adiós.» Luego se fue. (Nunca volvió.) Fin."
    chunks = chunk_pages([PageText(page=None, text=text)], target_chars=15, overlap_chars=0)
    assert [chunk.text for chunk in chunks] == ["Dijo «adiós.»", "Luego se fue.", "(Nunca volvió.)", "Fin."]


def test_sentence_longer_than_target_is_split_between_words():
    words = [f"palabra{n}" for n in range(400)]
    long_sentence = " ".join(words) + "."
    chunks = chunk_pages([PageText(page=None, text=f"Corta. {long_sentence} Final.")], target_chars=300)
    assert all(len(chunk.text) <= 300 for chunk in chunks)
    seen = {token.rstrip(".") for chunk in chunks for token in chunk.text.split()}
    assert set(words) <= seen  # every word intact somewhere
    assert chunks[0].text.startswith("Corta.")
    assert chunks[-1].text.endswith("Final.")


def test_word_longer_than_target_is_cut_to_fit():
    chunks = chunk_pages([PageText(page=None, text="x" * 2500)], target_chars=1000, overlap_chars=0)
    assert [len(chunk.text) for chunk in chunks] == [1000, 1000, 500]


def test_large_text_chunks_stay_bounded_and_deterministic():
    sentences = numbered_sentences(1500)
    sentences[700] = "Long " + "palabra " * 400 + "end."  # one sentence far over the target
    paragraphs = ["  ".join(sentences[start : start + 9]) for start in range(0, len(sentences), 9)]
    text = "\n\n".join(paragraphs)
    assert len(text) > 100_000
    longest_sentence = max(len(sentence) for sentence in sentences)
    pages = [PageText(page=None, text=text)]
    chunks = chunk_pages(pages)
    assert all(len(chunk.text) <= 1000 + longest_sentence for chunk in chunks)
    assert all(len(chunk.text) <= 1000 for chunk in chunks)
    assert chunk_pages(pages) == chunks
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))


def test_chunking_nothing_gives_no_chunks():
    assert chunk_pages([]) == []
    assert chunk_pages([PageText(page=1, text="")]) == []


@pytest.mark.parametrize(("target", "overlap"), [(0, 0), (100, 100), (100, -1)])
def test_chunking_refuses_impossible_sizes(target, overlap):
    with pytest.raises(ValueError):
        chunk_pages([PageText(page=None, text="Hola.")], target_chars=target, overlap_chars=overlap)


def test_extracted_documents_chunk_end_to_end():
    pdf_chunks = chunk_pages(extract_pages(make_pdf(["Página uno.", "Página dos."]), "pdf"))
    assert [(chunk.position, chunk.page, chunk.text) for chunk in pdf_chunks] == [
        (0, 1, "Página uno."),
        (1, 2, "Página dos."),
    ]
    docx_chunks = chunk_pages(extract_pages(make_docx(), "docx"))
    assert [chunk.page for chunk in docx_chunks] == [None]
    assert "Café | 2,50 €" in docx_chunks[0].text


def test_html_with_an_unclosed_comment_opener_keeps_its_text():
    markup = "<p>Port Zafiro</p>" + "<!--a>" * 2000
    pages = extract_pages(markup.encode(), "html")
    assert pages[0].text.startswith("Port Zafiro")


def test_chunking_many_tiny_sentences_keeps_every_chunk_within_the_target():
    text = "a. " * 20_000
    chunks = chunk_pages([PageText(page=None, text=text)], target_chars=1000, overlap_chars=150)
    assert chunks and all(len(chunk.text) <= 1000 for chunk in chunks)
    assert [chunk.position for chunk in chunks] == list(range(len(chunks)))
