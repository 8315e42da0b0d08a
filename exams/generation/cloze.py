"""The offline exam: cloze questions (a sentence with a key term blanked), deterministic, from the passages.

Difficulty changes what is asked, not only the label:
- easy: short sentences (about 12 words); the material's most frequent terms; 3 options, the two
  distractors clearly unlike the answer (another first letter, a length at least 2 apart; a number
  for a number, a word for a word); the hint is another sentence of the material with the same word
  blanked, and the source.
- medium: sentences of about 20 words; terms seen about twice; 4 options of the answer's kind
  (number, name or word) picked evenly from the material; the hint is the other sentence only.
- hard: long sentences (about 30 words); the rarest, longest terms; 5 options that look alike (same
  kind, shared prefix or suffix, similar length; numbers close in value); a second blank when the
  sentence has another unused term, whose options mix right and wrong halves; the hint is the source.
Hints never give the answer's first letter or length (easy distractors differ in exactly those) nor
a source whose name contains the answer.

Every answer term is used once and every sentence once, so the questions are distinct; the
subject's own words are never answers (the exam prints the subject). If the material cannot
support the number asked for, the error says how many it can. Distractors come from the same
material (or, for numbers, are near values), never the answer's own inflections, and outside hard
exams one word is not offered in every question. Option order comes from a random generator seeded
by a hash of the material and the parameters: the same material and parameters give the same exam.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import SequenceMatcher

from django.utils.translation import gettext as _

from exams.generation.text import TOKEN, Token, fold, is_complete, is_term, sentences, tokens
from exams.generation.types import EXCERPT_CHARS, Draft, ExamSpec, NotEnoughMaterial, source_label
from knowledge.retrieval import Passage

BLANK = "_____"
MIN_OPTIONS = 3
HINT_SENTENCE_CHARS = 160
# Wrong options considered per answer: enough once inflections and repeats are skipped.
CANDIDATES = 24
# Sentences outside these bounds read badly as questions, whatever the difficulty.
MIN_WORDS, MAX_WORDS = 5, 60


@dataclass(frozen=True, slots=True)
class Profile:
    options: int
    min_words: int
    max_words: int
    ideal_words: int
    term_score: Callable[[int, str], float]  # (occurrences in the material, term) -> preference
    distractors: str  # "unlike", "even" or "alike"
    second_blank: bool


PROFILES = {
    "easy": Profile(3, 5, 25, 12, lambda count, term: 2.0 * min(count, 6) + len(term) / 20, "unlike", False),
    "medium": Profile(4, 6, 40, 20, lambda count, term: 3.0 - abs(count - 2) + len(term) / 12, "even", False),
    "hard": Profile(5, 8, 60, 30, lambda count, term: 4.0 / count + len(term) / 5, "alike", True),
}


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    passage: Passage
    order: int
    words: int
    terms: tuple[Token, ...]


@dataclass(slots=True)
class Term:
    key: str
    form: str
    kind: str
    count: int
    where: list[int] = field(default_factory=list)  # the sentences it occurs in


def _read(passages: tuple[Passage, ...]) -> tuple[list[Sentence], dict[str, Term]]:
    """The material's complete sentences, each once (chunks overlap by whole sentences), and its terms."""
    found: list[Sentence] = []
    vocabulary: dict[str, Term] = {}
    seen: set[str] = set()
    for passage in passages:
        for text in sentences(passage.text):
            if text in seen or not is_complete(text):
                continue
            seen.add(text)
            all_tokens = tokens(text)
            terms = tuple(token for token in all_tokens if is_term(token, text))
            for token in terms:
                term = vocabulary.setdefault(token.key, Term(token.key, token.text, token.kind, 0))
                term.count += 1
                term.where.append(len(found))
            found.append(Sentence(text, passage, len(found), len(all_tokens), terms))
    return found, vocabulary


def _common_prefix(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _related(a: str, b: str) -> bool:
    """The same term or an inflection of it ("célula"/"células", "produce"/"produced")."""
    fa, fb = fold(a), fold(b)
    if fa.startswith(fb) or fb.startswith(fa):
        return True
    return _common_prefix(fa, fb) >= max(4, min(len(fa), len(fb)) - 2)


def _likeness(a: str, b: str) -> float:
    fa, fb = fold(a), fold(b)
    prefix = _common_prefix(fa, fb)
    suffix = _common_prefix(fa[::-1], fb[::-1])
    ratio = SequenceMatcher(None, fa, fb).ratio()
    return ratio + 0.15 * min(prefix, 3) + 0.15 * min(suffix, 3) - 0.08 * abs(len(fa) - len(fb))


def _stable(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _spread(*parts: str) -> int:
    """A cheap, deterministic shuffle key: picks distractors evenly over the material."""
    return zlib.crc32("\x1f".join(parts).encode())


def _near_numbers(value: str) -> list[str]:
    number, digits = int(value), len(value)
    found = []
    for step in (1, 2, 10, 3, 20, 100, 5, 50):
        for candidate in (number + step, number - step):
            text = str(candidate)
            if candidate > 0 and len(text) == digits and text != value:
                found.append(text)
    return found


def _distractors(
    answer: Term, sentence: Sentence, vocabulary: dict[str, Term], profile: Profile, limit: int, used: Counter
) -> list[str]:
    """Up to `limit` wrong options for `answer`, best first: never a term of the same sentence, never
    two forms of one word (an inflection would stand out, or be right too). Outside hard exams, terms
    already offered twice go last, so one frequent word does not turn up in every question."""
    ranked = _ranked_distractors(answer, sentence, vocabulary, profile)
    if profile.distractors != "alike":
        ranked.sort(key=lambda form: min(used[form], 2))
    chosen: list[str] = []
    for form in ranked:
        if len(chosen) == limit:
            break
        if not any(_related(form, other) for other in [answer.form, *chosen]):
            chosen.append(form)
    used.update(chosen)
    return chosen


def _ranked_distractors(answer: Term, sentence: Sentence, vocabulary: dict[str, Term], profile: Profile) -> list[str]:
    """Up to CANDIDATES wrong options, best first. Cheap filters come before the string comparisons, so a
    large base (thousands of terms) costs milliseconds a question."""
    in_sentence = {token.key for token in sentence.terms} | {fold(token.text) for token in sentence.terms}
    pool = [term for term in vocabulary.values() if term.key not in in_sentence and fold(term.form) not in in_sentence]
    size = len(answer.form)
    if profile.distractors == "unlike":
        # Clearly unlike, yet a plausible kind: a number for a number, a word for a word; among the
        # material's frequent terms, which the student has met.
        pool = [t for t in pool if (t.kind == "number") == (answer.kind == "number")]
        initial = fold(answer.form)[:1]
        clear = [t for t in pool if fold(t.form)[:1] != initial and abs(len(t.form) - size) >= 2] or pool
        frequent = heapq.nsmallest(4 * CANDIDATES, clear, key=lambda t: (-t.count, t.key))
        ranked = sorted(frequent, key=lambda t: (_likeness(answer.form, t.form) - 0.1 * min(t.count, 5), t.key))
        return [t.form for t in ranked[:CANDIDATES]]
    same_kind = [t for t in pool if t.kind == answer.kind]
    other_kind = [
        t.form for t in heapq.nsmallest(CANDIDATES, pool, key=lambda t: (t.kind == answer.kind, t.count, t.key))
    ]
    if answer.kind == "number":
        taken = {t.form for t in same_kind}
        numbers = [t.form for t in same_kind] + [n for n in _near_numbers(answer.form) if n not in taken]
        numbers = [n for n in numbers if n not in in_sentence]
        if profile.distractors == "alike":
            numbers.sort(key=lambda n: (len(n) != size, abs(int(n) - int(answer.form)), n))
        else:
            numbers.sort(key=lambda n: (_spread(answer.key, n), n))
        return numbers[:CANDIDATES] + other_kind
    if profile.distractors == "alike":
        fa = fold(answer.form)
        near = [
            t
            for t in same_kind
            if abs(len(t.form) - size) <= 2 and (fold(t.form)[0] == fa[0] or fold(t.form)[-2:] == fa[-2:])
        ]
        if len(near) < CANDIDATES:
            chosen = {t.key for t in near}
            rest = [t for t in same_kind if t.key not in chosen]
            near += heapq.nsmallest(CANDIDATES, rest, key=lambda t: (abs(len(t.form) - size), t.key))
        ranked = heapq.nsmallest(CANDIDATES, near, key=lambda t: (-_likeness(answer.form, t.form), t.key))
    else:
        ranked = heapq.nsmallest(CANDIDATES, same_kind, key=lambda t: (_spread(answer.key, t.key), t.key))
    return [t.form for t in ranked] + other_kind


@dataclass(slots=True)
class Pick:
    sentence: Sentence
    blanks: list[Token]
    answers: list[str]
    wrong: list[list[str]]  # per blank, the distractors, best first


def _candidates(found: list[Sentence], vocabulary: dict[str, Term], profile: Profile) -> list[tuple[Sentence, Token]]:
    """Every (sentence, term) a question could ask, best first for this difficulty; then the rest."""

    def score(sentence: Sentence, token: Token) -> float:
        term = vocabulary[token.key]
        fit = abs(sentence.words - profile.ideal_words) / profile.ideal_words
        return profile.term_score(term.count, term.form) - 2.0 * fit

    preferred, fallback = [], []
    for sentence in found:
        if sentence.text.endswith("?") or not MIN_WORDS <= sentence.words <= MAX_WORDS:
            continue
        in_range = profile.min_words <= sentence.words <= profile.max_words
        for token in sentence.terms:
            (preferred if in_range else fallback).append((-score(sentence, token), sentence.order, token.index, token))
    ranked = sorted(preferred, key=lambda item: item[:3]) + sorted(fallback, key=lambda item: item[:3])
    return [(found[order], token) for _score, order, _index, token in ranked]


def _pick(
    found: list[Sentence], vocabulary: dict[str, Term], profile: Profile, wanted: int, subject: str
) -> list[Pick]:
    picks: list[Pick] = []
    used_sentences: set[int] = set()
    # The subject's own words are printed atop the exam: as answers they would give themselves away.
    subject_words = [word for word in TOKEN.findall(subject) if len(word) >= 4]
    used_keys = {key for key, term in vocabulary.items() if any(_same_word(term.form, w) for w in subject_words)}
    offered: Counter = Counter()
    for sentence, token in _candidates(found, vocabulary, profile):
        if sentence.order in used_sentences or token.key in used_keys:
            continue
        answer = vocabulary[token.key]
        wrong = _distractors(answer, sentence, vocabulary, profile, profile.options - 1, offered)
        if len(wrong) < MIN_OPTIONS - 1:
            continue
        used_sentences.add(sentence.order)
        used_keys.add(token.key)
        picks.append(Pick(sentence, [token], [token.text], [wrong]))
        if len(picks) == wanted:
            break
    if profile.second_blank:
        for pick in picks:
            _add_second_blank(pick, vocabulary, profile, used_keys)
    return picks


def _add_second_blank(pick: Pick, vocabulary: dict[str, Term], profile: Profile, used_keys: set[str]) -> None:
    first = pick.blanks[0]
    for token in pick.sentence.terms:
        if token.key in used_keys or abs(token.index - first.index) < 2:
            continue
        # The two blanks never share a wrong option: "droplets / droplets" would be wrong at a glance.
        first_wrong = {fold(form) for form in pick.wrong[0]}
        wrong = _distractors(vocabulary[token.key], pick.sentence, vocabulary, profile, 2 + len(first_wrong), Counter())
        wrong = [form for form in wrong if fold(form) not in first_wrong][:2]
        if len(wrong) < 2 or len(pick.wrong[0]) < 2:
            continue
        used_keys.add(token.key)
        pairs = sorted([(first, pick.answers[0], pick.wrong[0]), (token, token.text, wrong)], key=lambda p: p[0].index)
        pick.blanks = [pair[0] for pair in pairs]
        pick.answers = [pair[1] for pair in pairs]
        pick.wrong = [pair[2] for pair in pairs]
        return


def _options(pick: Pick, profile: Profile) -> tuple[list[str], str]:
    """The option texts (answer first) and the answer text."""
    if len(pick.blanks) == 1:
        return [pick.answers[0], *pick.wrong[0]], pick.answers[0]
    (a, b), (wa, wb) = pick.answers, pick.wrong
    # Half-right pairs look most like the answer: that is what makes two blanks hard.
    pairs = [(a, wb[0]), (wa[0], b), (wa[0], wb[0]), (wa[1], wb[1]), (a, wb[1]), (wa[1], b)]
    options = [f"{a} / {b}"]
    for x, y in pairs:
        text = f"{x} / {y}"
        if text not in options:
            options.append(text)
    return options[: profile.options], options[0]


def _question_text(pick: Pick) -> str:
    text = pick.sentence.text
    for token in sorted(pick.blanks, key=lambda t: t.start, reverse=True):
        text = text[: token.start] + BLANK + text[token.end :]
    return text


def _same_word(a: str, b: str) -> bool:
    fa, fb = fold(a), fold(b)
    return fa == fb or ((fa.startswith(fb) or fb.startswith(fa)) and abs(len(fa) - len(fb)) <= 3)


def _around_blank(text: str) -> str:
    if len(text) <= HINT_SENTENCE_CHARS:
        return text
    middle = text.index(BLANK)
    start = max(0, middle - HINT_SENTENCE_CHARS // 2)
    start = text.find(" ", start) + 1 if start else 0
    end = text.rfind(" ", 0, start + HINT_SENTENCE_CHARS)
    end = len(text) if end <= middle else end
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _elsewhere(pick: Pick, found: list[Sentence], vocabulary: dict[str, Term]) -> str:
    """Another sentence of the material that uses the answer, the answer blanked: a clue that does not give it."""
    answer = pick.answers[0]
    for order in vocabulary[pick.blanks[0].key].where:
        if order == pick.sentence.order:
            continue
        text = found[order].text
        for token in reversed(tokens(text)):
            if _same_word(token.text, answer):
                text = text[: token.start] + BLANK + text[token.end :]
        if BLANK in text:
            return _around_blank(text)
    return ""


def _hint(pick: Pick, difficulty: str, found: list[Sentence], vocabulary: dict[str, Term]) -> str:
    """Less help as difficulty rises. Never the answer's first letter or length: easy distractors are chosen
    to differ in exactly those, so such a hint would point straight at the answer."""
    label = source_label(pick.sentence.passage)
    # A file named after the answer ("photosynthesis.txt") would say it.
    if any(_same_word(word, answer) for word in TOKEN.findall(label) for answer in pick.answers):
        source = ""
    else:
        source = _("See %(source)s.") % {"source": label}
    if len(pick.blanks) > 1:
        return " ".join(filter(None, [_("Two blanks, in the order they appear."), source]))
    clue = _elsewhere(pick, found, vocabulary) if difficulty != "hard" or not source else ""
    if clue:
        clue = _("The same word is missing here: “%(sentence)s”") % {"sentence": clue}
    parts = [clue, source] if difficulty == "easy" else [clue or source]
    return " ".join(filter(None, parts)) or _("Read the whole sentence: its other words point to the answer.")


def cloze_exam(*, passages: tuple[Passage, ...], spec: ExamSpec) -> list[Draft]:
    """`spec.question_count` cloze questions from the passages, in the order of the material."""
    profile = PROFILES[spec.difficulty]
    found, vocabulary = _read(passages)
    picks = _pick(found, vocabulary, profile, spec.question_count, spec.subject)
    if len(picks) < spec.question_count:
        raise NotEnoughMaterial(subject=spec.subject, possible=len(picks), asked=spec.question_count)
    seed = _stable(spec.difficulty, str(spec.question_count), str(spec.hints), *(p.text for p in passages))
    rng = random.Random(seed)  # noqa: S311 (option order, not a secret)
    drafts = []
    for pick in sorted(picks, key=lambda p: p.sentence.order):
        options, answer = _options(pick, profile)
        rng.shuffle(options)
        drafts.append(
            Draft(
                text=_question_text(pick),
                options=tuple(options),
                answer_index=options.index(answer),
                hint=_hint(pick, spec.difficulty, found, vocabulary) if spec.hints else "",
                explanation="",
                source=pick.sentence.passage,
                excerpt=pick.sentence.text[:EXCERPT_CHARS],
            )
        )
    return drafts
