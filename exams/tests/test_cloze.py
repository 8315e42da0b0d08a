"""The offline cloze generator: deterministic, distinct questions, difficulty that changes what is asked,
helpful hints that do not give the answer away, and English and Spanish text kept intact."""

import uuid
from collections import Counter

import pytest

from exams.generation.cloze import BLANK, PROFILES, _distractors, _read, cloze_exam
from exams.generation.text import TOKEN, fold, is_term, sentences, tokens
from exams.generation.types import ExamSpec, NotEnoughMaterial
from exams.tests.material import ENGLISH, SPANISH
from knowledge.retrieval import Passage


def passages(text: str, filename: str = "notes.txt") -> tuple[Passage, ...]:
    document = uuid.UUID(int=7)
    return tuple(
        Passage(chunk_id=i, document_id=document, filename=filename, page=2, position=i, text=part, score=0.0)
        for i, part in enumerate(text.split("\n\n"))
    )


def gives_away(hint: str, answer: str) -> bool:
    words = {fold(word) for word in TOKEN.findall(hint)}
    return any(fold(part) in words for part in answer.split(" / "))


def exam(text: str, difficulty: str, count: int = 12, hints: bool = True):
    return cloze_exam(passages=passages(text), spec=ExamSpec("Subject", count, difficulty, hints))


@pytest.mark.parametrize("text", [ENGLISH, SPANISH])
def test_the_same_material_and_parameters_give_the_same_exam(text):
    assert exam(text, "medium") == exam(text, "medium")


@pytest.mark.parametrize("text", [ENGLISH, SPANISH])
@pytest.mark.parametrize("difficulty", ["easy", "medium", "hard"])
def test_questions_are_distinct_with_one_right_option_from_the_sentence(text, difficulty):
    drafts = exam(text, difficulty)
    assert len({d.text for d in drafts}) == len({d.answer for d in drafts}) == 12
    for draft in drafts:
        assert BLANK in draft.text
        assert len({fold(option) for option in draft.options}) == len(draft.options)
        assert all(
            len({fold(part) for part in option.split(" / ")}) == draft.text.count(BLANK) for option in draft.options
        )
        # Filling the blanks with the answer gives back the source sentence.
        filled = draft.text
        for part in draft.answer.split(" / "):
            filled = filled.replace(BLANK, part, 1)
        assert filled == draft.excerpt and filled in " ".join(draft.source.text.split())
        assert draft.hint and not gives_away(draft.hint, draft.answer)
        assert draft.source.filename == "notes.txt"


def test_difficulty_changes_the_sentences_the_terms_and_the_options():
    easy, medium, hard = (exam(ENGLISH, d) for d in ("easy", "medium", "hard"))
    assert {len(d.options) for d in easy} == {3}
    assert {len(d.options) for d in medium} == {4}
    assert {len(d.options) for d in hard} == {5}
    words = {name: sum(len(d.excerpt.split()) for d in drafts) for name, drafts in (("easy", easy), ("hard", hard))}
    assert words["easy"] < words["hard"]  # shorter sentences when easy
    assert any(d.text.count(BLANK) == 2 for d in hard) and all(d.text.count(BLANK) == 1 for d in easy)
    assert {d.answer for d in easy} != {d.answer for d in hard}
    # Easy distractors look unlike the answer (another first letter); hard ones share letters with it.
    for draft in easy:
        assert all(fold(o)[0] != fold(draft.answer)[0] for o in draft.options if o != draft.answer)
    # Hints help less as difficulty rises: a clue sentence and the source, a clue, the source only.
    assert all(BLANK in d.hint and d.hint.endswith("See notes.txt, page 2.") for d in easy)
    assert sum(BLANK in d.hint for d in medium) >= 5 and not any("See" in d.hint for d in medium if BLANK in d.hint)
    assert all(BLANK not in d.hint and d.hint.endswith("See notes.txt, page 2.") for d in hard)


def test_hard_distractors_for_a_number_are_nearby_numbers_and_easy_ones_are_unlike_it():
    text = (
        "The first bridge over the river was opened in 1874 after a long dispute. "
        "The cathedral tower was finished in 1520 by local masons working for the bishop. "
        "The harbour wall was rebuilt in 1911 when a storm destroyed the old pier."
    )
    found, vocabulary = _read(passages(text))
    sentence = found[0]
    answer = vocabulary["1874"]
    hard = _distractors(answer, sentence, vocabulary, PROFILES["hard"], 4, Counter())
    assert all(option.isdigit() and len(option) == 4 for option in hard)
    assert max(abs(int(option) - 1874) for option in hard) <= 20  # closer than the text's 1911 and 1520
    word = vocabulary["cathedral"]
    easy = _distractors(word, found[1], vocabulary, PROFILES["easy"], 2, Counter())
    assert len(easy) == 2 and not any(option.isdigit() or option[0] == "c" for option in easy)


def test_spanish_accents_and_eñes_survive_in_questions_and_options():
    words = set(TOKEN.findall(SPANISH))
    for difficulty in ("easy", "hard"):
        options = [part for d in exam(SPANISH, difficulty) for option in d.options for part in option.split(" / ")]
        assert set(options) <= words  # whole words: "fotosíntesis", never "fotos" + "ntesis"
        assert any(not option.isascii() for option in options)


def test_material_too_thin_names_how_many_questions_it_supports():
    with pytest.raises(NotEnoughMaterial) as refused:
        exam("The island of Zafiro has a harbour on its northern coast beside the cliffs.", "easy", count=5)
    assert refused.value.possible < 5 and "5 were asked for" in refused.value.message


def test_sentence_splitting_and_terms_handle_abbreviations_urls_and_spanish_marks():
    assert sentences("See e.g. the cells. ¿Qué es? Es agua.\n\n- Item one.") == [
        "See e.g. the cells.",
        "¿Qué es?",
        "Es agua.",
        "Item one.",
    ]
    sentence = 'Visit <img src="http://example.org/x"> beside the montaña in 1999.'
    terms = [token.text for token in tokens(sentence) if is_term(token, sentence)]
    assert terms == ["beside", "montaña", "1999"]
