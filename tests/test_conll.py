"""CoNLL ingestion for sequence labeling (components/sequence_labeling/conll.py): the shared
CoNLL-2003 copy's first few hundred sentences, tag schemes, entity scoring and bad files."""

import pytest

from conftest import conll_sample
from rnnflow.components.sequence_labeling.conll import entity_spans, normalize_tags, read_conll, span_scores
from rnnflow.components.tasks import DataError



def sample(tmp_path, sentences=300):
    """The first `sentences` sentences of CoNLL-2003's validation file (its -DOCSTART- lines kept)."""
    return conll_sample(tmp_path / "valid_sample.txt", "valid.txt", sentences)


def test_conll_2003_sentences_read_with_document_lines_skipped(tmp_path):
    sentences = read_conll(sample(tmp_path))
    assert 250 < len(sentences) <= 300
    first = sentences[0]
    assert first.tokens[:3] == ["CRICKET", "-", "LEICESTERSHIRE"] and first.tags[2] == "B-ORG" and first.line == 3
    assert not any("-DOCSTART-" in s.tokens for s in sentences)
    assert all(len(s.tokens) == len(s.tags) > 0 for s in sentences)
    types = set()
    for s in sentences:
        tags, repaired = normalize_tags(s.tags)
        assert tags == s.tags and repaired == 0  # CoNLL-2003 as shipped here is IOB2 already
        types |= {kind for _, _, kind in entity_spans(tags)}
    assert types == {"PER", "ORG", "LOC", "MISC"}


def test_iob1_iob2_and_iobes_normalize_to_the_same_entities():
    iob2 = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "O", "B-ORG"]
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-LOC", "O", "I-ORG"]
    iobes = ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "E-LOC", "O", "S-ORG"]
    assert normalize_tags(iob2) == (iob2, 0)
    assert normalize_tags(iobes) == (iob2, 0)
    tags, repaired = normalize_tags(iob1)
    assert tags == iob2 and repaired == 3  # the three entities IOB1 starts with I-
    assert entity_spans(iob2) == [(0, 2, "PER"), (3, 4, "LOC"), (4, 6, "LOC"), (7, 8, "ORG")]


def test_an_i_tag_that_follows_nothing_is_repaired_and_counted_and_an_unknown_tag_is_an_error():
    assert normalize_tags(["O", "I-PER", "I-PER", "B-LOC", "I-ORG"]) == (["O", "B-PER", "I-PER", "B-LOC", "B-ORG"], 2)
    with pytest.raises(DataError, match=r"line 7: token 2: tag 'PER' is not O or B-, I-, E-, S- followed by a type"):
        normalize_tags(["O", "PER"], where="line 7: ")


def test_entity_scores_count_exact_span_and_type_matches_as_the_conll_scorer():
    true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "B-MISC"]]
    scores = span_scores(true, predicted)
    # Right: LOC, ORG. Wrong: PER (one token short), MISC (not an entity).
    precision, recall = 2 / 4, 2 / 3
    assert scores["overall"] == pytest.approx({"precision": precision, "recall": recall,
                                               "f1": 2 * precision * recall / (precision + recall)})
    assert scores["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert scores["LOC"]["f1"] == 1.0 and scores["MISC"]["precision"] == 0.0


@pytest.mark.parametrize("content, message", [
    (b"EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", r"line 2 has 3 columns, the file's first token line has 4"),
    (b"", r"no sentence \(an empty file"),
    (b"-DOCSTART- -X- -X- O\n\n", r"no sentence"),
    (b"Caf\xe9 NNP B-NP O\n", r"line 1: invalid UTF-8 \(byte 0xe9 at byte 3 of the line\)"),
    (b'{"tokens": ["EU"], "tags": ["B-ORG"]}\n', r"line 1 looks like JSON, not CoNLL columns: for JSON lines set "
                                                  r"data.format: jsonl"),
    (b"EU\nrejects\n", r"line 1 has 1 column\(s\), so the token column \(data.token_column: 0\) and the tag column "
                      r"\(data.tag_column: -1\) are the same column"),
    (b"E\x00U\x00 \x00O\x00\n\x00", r"line 1: a NUL byte: not UTF-8 text \(a binary file, or text saved as UTF-16"),
    (bytes(range(128, 256)) * 8, r"invalid UTF-8 .*most of its bytes are not text: is it a binary or compressed file\?"),
])
def test_bad_conll_files_are_errors_naming_the_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_conll(str(path))


def test_a_byte_order_mark_does_not_turn_docstart_into_a_sentence(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n".encode("utf-8"))
    sentences = read_conll(str(path))
    assert [s.tokens for s in sentences] == [["EU", "rejects"]]
