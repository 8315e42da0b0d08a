"""Sentences, words and the key terms a cloze question can blank, for English and Spanish text."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

# A sentence ends at . ! ? or … followed by space and something that can start a sentence, so
# "e.g. the" and "3.14" do not split; blank lines and list items always do.
_SENTENCE_END = re.compile(
    r"(?<=[.!?…])[\"'»”)\]]*\s+(?=[¿¡\"'«“(\[]?[^\W_a-zß-ÿ])|\n\s*\n|\n(?=\s*(?:[-*•#]|\d+[.)])\s)"
)
_CLOSED = re.compile(r"[.!?…][\"'»”)\]]*$")
_LEADING_MARKS = re.compile(r"^\s*(?:#+|[-*•]|\d+[.)])\s+")
# Letters and digits, joined by inner hyphens or apostrophes ("self-made", "l'eau"); ñ and accents included.
TOKEN = re.compile(r"[^\W_]+(?:[-'\u2019][^\W_]+)*")
# Characters that glue a token to a URL, a path, markup or code: such tokens are not blanked.
_GLUE = set('/\\<>=:@[]{}"#_|&%$^~`*+')

_STOPWORDS_TEXT = """
    about above across after again against all almost along also although always among another any anyone
    anything are around away because been before being below besides between beyond both but can cannot
    could did does doing done down during each either else enough even ever every few first for from
    further had has have having hence her here hers herself him himself his how however into its itself
    just last later least less like made make makes many may might more most mostly much must myself
    near nearly neither never next none nor not now often once one only onto other others otherwise our
    ours ourselves out over own per perhaps rather same several shall she should since some something
    such than that the their theirs them themselves then there therefore these they thing things this
    those though through thus together too toward towards under unless until upon used uses using very
    was were what whatever when whenever where whereas whether which while who whom whose why will with
    within without would yet you your yours yourself also known called named many well still back
    become became becomes make made takes took give given gives
    acerca además ahora algo alguien alguna algunas alguno algunos allí ante antes aquel aquella aquellas
    aquello aquellos aquí así aunque bajo bien cada casi cierto cierta como cómo con contra cual cuál
    cuales cuáles cualquier cuando cuándo cuanto cuánto cuya cuyas cuyo cuyos debe deben debido del
    demás dentro desde después donde dónde durante ella ellas ello ellos entonces entre era eran eres
    esa esas ese eso esos esta está estaba estaban estado están estar estas este esto estos estoy fue
    fueron gran grande grandes había habían haber habrá hace hacen hacer hacia hasta hay incluso junto
    luego mayor mayoría menos mientras misma mismas mismo mismos mucha muchas mucho muchos nada nadie
    ninguna ninguno nosotras nosotros nuestra nuestras nuestro nuestros nunca otra otras otro otros para
    parte pero poco pocos podía podrá porque puede pueden pues qué quien quién quienes siempre sido
    siendo sino sobre solo sólo somos según suya suyo tal también tampoco tan tanto tendrá tenía tener
    tiene tienen toda todas todavía todo todos tras través una unas uno unos usted ustedes vez veces
    lugar forma manera otros llamado llamada llama conocido conocida
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


@functools.lru_cache(maxsize=65_536)
def fold(text: str) -> str:
    """Case- and accent-insensitive form: "Fotosíntesis" and "fotosintesis" compare equal."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace collapsed, list and heading marks removed."""
    found = []
    for part in _SENTENCE_END.split(text):
        sentence = " ".join(_LEADING_MARKS.sub("", part).split())
        if sentence:
            found.append(sentence)
    return found


def is_complete(sentence: str) -> bool:
    """Starts with a capital or a digit (after opening marks) and ends with its punctuation: not a fragment."""
    first = next((char for char in sentence if char.isalnum()), "")
    return bool(first) and (first.isupper() or first.isdigit()) and bool(_CLOSED.search(sentence))


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    start: int
    end: int
    index: int  # the token's position among the sentence's tokens

    @property
    def kind(self) -> str:
        """`number`, `name` (a capitalised word) or `word`: a distractor looks alike when the kind matches."""
        if self.text.isdigit():
            return "number"
        if self.text[0].isupper():
            return "name"
        return "word"

    @property
    def key(self) -> str:
        """What counts as the same term: names keep their case, words do not."""
        return self.text if self.kind == "name" else self.text.casefold()


def tokens(sentence: str) -> list[Token]:
    return [Token(m.group(), m.start(), m.end(), index) for index, m in enumerate(TOKEN.finditer(sentence))]


def is_term(token: Token, sentence: str) -> bool:
    """A token worth asking about: a content word of four letters or more, or a number of two digits or more.

    Not the sentence's first token (its capital would mark it as a name), and not part of a URL, path,
    markup or code, where a blank would cut a string in two rather than test what it says.
    """
    if token.index == 0:
        return False
    before = sentence[token.start - 1] if token.start else " "
    after = sentence[token.end] if token.end < len(sentence) else " "
    if before in _GLUE or after in _GLUE or (after == "." and sentence[token.end + 1 : token.end + 2].isalnum()):
        return False
    text = token.text
    if text.isdigit():
        return 2 <= len(text) <= 9
    letters = sum(1 for char in text if char.isalpha())
    if letters < 4 or letters != len(text.replace("-", "").replace("'", "").replace("\u2019", "")):
        return False
    return text.casefold() not in STOPWORDS and not text.isupper()
