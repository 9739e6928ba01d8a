"""The sequence labeling task (`ner`): reading CoNLL/JSONL with their bad lines, the tagger's
masked losses, entity spans computed in the graph, and one end-to-end run on CoNLL-2003's first
400 training sentences whose pushed model is queried in a fresh TensorFlow-only process."""

import json
import random
import textwrap

import numpy as np
import pytest

from conftest import run_fresh
from rnnflow.components.sequence_labeling import conll
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline.config import load_config

TASK = get_task("sequence_labeling")


def config_for(path, *overrides):
    return load_config("ner", [f"data.path={path}", *overrides])


# Enough distinct sentences for both splits, so a test of something else passes the size check.
FILLER = [{"tokens": [f"filler{i}", "words"], "tags": ["O", "O"]} for i in range(60)]
FILLER_CONLL = "".join(f"filler{i} O\nwords O\n\n" for i in range(60))


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_jsonl_sentences_are_read_and_their_tags_normalized_to_iob2(tmp_path):
    path = write_jsonl(tmp_path / "s.jsonl", [
        {"tokens": ["EU", "rejects", "German", "call"], "tags": ["S-ORG", "O", "S-MISC", "O"]},
        {"tokens": ["Peter", "Blackburn"], "tags": ["B-PER", "E-PER"]}, "", *FILLER])
    report = TASK.preflight(config_for(path, "data.format=jsonl"))
    assert report.rows == 2 + len(FILLER)
    assert report.details["tags"] == ["B-MISC", "B-ORG", "B-PER", "I-PER", "O"]
    assert report.details["entity_types"] == ["MISC", "ORG", "PER"]


@pytest.mark.parametrize("line, message", [
    ("not json", "line 1: not JSON"),
    ('["a"]', "line 1: expected a JSON object"),
    ('{"tokens": ["a", "b"], "tags": ["O"]}', "line 1: 2 tokens but 1 tags"),
    ('{"tokens": ["New York"], "tags": ["B-LOC"]}', "line 1: token 1 'New York' is empty or holds whitespace"),
    ('{"tokens": ["a"], "tags": [1]}', "line 1: 'tags' must be a list of strings"),
    ('{"tokens": ["a"]}', "line 1: 'tags' must be a list of strings; got nothing"),
])
def test_a_bad_jsonl_line_is_named(tmp_path, line, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [line])
    with pytest.raises(DataError, match=message.replace("[", r"\[")):
        TASK.preflight(config_for(path, "data.format=jsonl"))


def test_bad_conll_files_are_errors_naming_file_and_line(tmp_path):
    wrong_width = tmp_path / "wrong.txt"
    wrong_width.write_text("EU NNP B-ORG\nrejects VBZ\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2 has 2 columns"):
        TASK.preflight(config_for(wrong_width))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="no sentence"):
        TASK.preflight(config_for(empty))
    invalid = tmp_path / "invalid.txt"
    invalid.write_bytes(b"EU B-ORG\nM\xfcnchen B-LOC\n")
    with pytest.raises(DataError, match="line 2: invalid UTF-8"):
        TASK.preflight(config_for(invalid))
    outside = tmp_path / "outside.txt"
    outside.write_text("EU O\nrejects O\n", encoding="utf-8")
    with pytest.raises(DataError, match="every tag is O"):
        TASK.preflight(config_for(outside))
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("EU X-ORG\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 1: token 1: tag 'X-ORG'"):
        TASK.preflight(config_for(unknown))


def test_too_few_sentences_for_a_split_stop_in_the_input_check(tmp_path):
    path = tmp_path / "three.txt"
    path.write_text("EU B-ORG\nrejects O\n\nPeter B-PER\nsaid O\n\nBonn B-LOC\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"three.txt: 3 sentences give the train split \d and the eval split \d "
                                        r"\(data.split.eval_percent=\d+\); a tagger needs at least 20 train and 5 eval"):
        TASK.preflight(config_for(path))


def test_long_sentences_and_repaired_tags_are_counted_in_the_report(tmp_path):
    path = tmp_path / "long.txt"
    long = "".join(f"w{i} O\n" for i in range(12))
    path.write_text(f"EU I-ORG\nsays O\n\n{long}\nBonn B-LOC\n\n{FILLER_CONLL}", encoding="utf-8")
    report = TASK.preflight(config_for(path, "task.max_tokens=10"))
    assert report.details["truncated_sentences"] == 1 and report.details["repaired_tags"] == 1
    assert "1 of 63 sentences are longer than task.max_tokens=10" in report.warnings[0]
    assert "line 4 (12 tokens)" in report.warnings[0]
    assert "1 I- tags followed nothing" in report.notes[0]


def random_tags(rng, length):
    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    return [rng.choice(names) for _ in range(length)]


def test_entity_spans_in_the_graph_match_the_conll_scorer():
    import tensorflow as tf

    from rnnflow.components.sequence_labeling.export import TagTable

    names = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    table = TagTable(names)
    rng = random.Random(0)
    steps = 9
    rows = [random_tags(rng, rng.randint(0, steps)) for _ in range(200)]  # I- after O included
    tokens = [[f"t{i}" for i in range(len(r))] + [""] * (steps - len(r)) for r in rows]
    ids = [[names.index(t) for t in r] + [4] * (steps - len(r)) for r in rows]
    real = [[i < len(r) for i in range(steps)] for r in rows]
    got = {k: v.numpy() for k, v in table.entities(tf.constant(tokens), tf.constant(ids), tf.constant(real)).items()}
    for i, row in enumerate(rows):
        expected = conll.entity_spans(row)
        count = len(expected)
        assert list(zip(got["entity_starts"][i][:count], got["entity_ends"][i][:count],
                        [t.decode() for t in got["entity_types"][i][:count]])) == expected
        assert [t.decode() for t in got["entity_texts"][i][:count]] == [
            " ".join(tokens[i][s:e]) for s, e, _ in expected]
        assert list(got["entity_starts"][i][count:]) == [-1] * (steps - count)


@pytest.mark.parametrize("char_encoder, decoder", [("none", "softmax"), ("cnn", "crf"), ("lstm", "softmax")])
def test_the_tagger_loss_ignores_padding_and_decodes_every_real_step(decoder, char_encoder):
    import tensorflow as tf

    from rnnflow.models.tagger import CHAR_IDS, PAD_LABEL, WORD_IDS, build_tagger, decode
    from rnnflow.pipeline.config import ModelConfig, TrainingConfig

    model = build_tagger(ModelConfig(units=8, embedding_dim=8, dropout=0.0), TrainingConfig(batch_size=2, learning_rate=0.03,
                                                                               lr_schedule="constant", epochs=1),
                         vocab_size=20, num_tags=5, char_vocab_size=12, word_chars=4, char_encoder=char_encoder,
                         char_units=6, decoder=decoder)
    words = np.array([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]])
    chars = np.random.RandomState(0).randint(1, 12, size=(2, 5, 4)) * (words[:, :, None] > 0)
    labels = np.array([[1, 2, 0, PAD_LABEL, PAD_LABEL], [3, 4, PAD_LABEL, PAD_LABEL, PAD_LABEL]])
    inputs = {WORD_IDS: words} if char_encoder == "none" else {WORD_IDS: words, CHAR_IDS: chars}
    longer = {k: np.concatenate([v, np.zeros_like(v[:, :2])], axis=1) for k, v in inputs.items()}
    loss = model.compute_loss(y=labels, y_pred=model(inputs, training=False))
    padded_labels = np.concatenate([labels, np.full((2, 2), PAD_LABEL)], axis=1)
    loss_padded = model.compute_loss(y=padded_labels, y_pred=model(longer, training=False))
    assert np.isclose(float(loss), float(loss_padded), atol=1e-5)
    history = model.fit(inputs, labels, epochs=60, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    tags, scores = decode(model, model(inputs, training=False), tf.constant([3, 2]))
    assert tags.numpy().tolist() == [[1, 2, 0, 0, 0], [3, 4, 0, 0, 0]]  # learned; padding is 0
    assert np.all(scores.numpy()[0, :3] > 0) and np.all(scores.numpy()[0, 3:] == 0)


# ---------------------------------------------------------------------------
# End to end: `rnnflow run --config ner` on a small sample (session fixture `ner_run`).
# ---------------------------------------------------------------------------

@pytest.mark.e2e
def test_ner_run_is_blessed_on_entity_f1_with_scores_per_type(ner_run):
    _, _, summary = ner_run
    metrics = summary["metrics"]
    assert summary["status"] == "succeeded" and summary["blessed"]
    assert metrics["entity_f1"] >= load_config("ner").evaluation.lower_bound
    assert 0.0 < metrics["token_accuracy"] <= 1.0
    assert set(summary["entity_scores"]) == {"LOC", "MISC", "ORG", "PER"}
    assert set(summary["entity_scores"]["PER"]) == {"precision", "recall", "f1"}
    assert summary["training"]["tags"] == sorted(summary["training"]["tags"])


@pytest.mark.e2e
def test_ner_run_stops_on_the_eval_entity_f1_and_keeps_its_best_epoch(ner_run):
    _, _, summary = ner_run
    training = summary["training"]
    f1 = training["history"]["val_entity_f1"]
    assert training["monitor"] == "val_entity_f1" and len(f1) == training["epochs_run"]
    assert training["best_epoch"] == f1.index(max(f1)) + 1
    # The kept epoch's eval F1 is what the Evaluator reports (the same split, weights and scorer).
    assert summary["metrics"]["entity_f1"] == pytest.approx(max(f1), abs=1e-6)


FRESH_TAGGING = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    baseline = set(sys.modules)  # TF may import Keras itself (TF_USE_LEGACY_KERAS); the model must not
    model = tf.saved_model.load(sys.argv[1])
    sentences = ["Peter Blackburn visited Germany and the European Union in Brussels .", "",
                 " ".join(["word"] * 300)]
    by_text = model.signatures["serving_default"](sentence=tf.constant(sentences))
    tokens = [s.split() for s in sentences]
    width = max(len(t) for t in tokens)
    by_tokens = model.signatures["serving_tokens"](tokens=tf.constant([t + [""] * (width - len(t)) for t in tokens]))
    plain = lambda outputs: {k: v.numpy().tolist() for k, v in outputs.items()}
    print(json.dumps({"text": plain(by_text), "tokens": plain(by_tokens),
                      "modules": sorted(m for m in set(sys.modules) - baseline
                                                  if m.split(".")[0] in ("rnnflow", "keras", "tf_keras", "tfx"))},
                     default=lambda b: b.decode()))
""")


@pytest.mark.e2e
def test_pushed_tagger_tags_raw_and_pretokenized_sentences_alike_in_a_fresh_process(ner_run):
    _, _, summary = ner_run
    answer = run_fresh(FRESH_TAGGING, summary["pushed_model"])
    assert answer["modules"] == []
    text, tokens = answer["text"], answer["tokens"]
    assert text == tokens
    max_tokens = load_config("ner").task.max_tokens
    assert text["lengths"] == [11, 0, max_tokens]  # the 300-word sentence is truncated
    assert text["token_counts"] == [11, 0, 300]  # ... and says so
    first_tags = [t for t in text["tags"][0] if t]
    assert len(first_tags) == 11 and text["tags"][1] == [""] * max_tokens
    spans = conll.entity_spans(first_tags)
    assert [(s, e, k) for s, e, k in zip(text["entity_starts"][0], text["entity_ends"][0], text["entity_types"][0])
            if s >= 0] == spans
    assert all(0.0 < score <= 1.0 for score in text["tag_scores"][0][:11])


EDGE_REQUESTS = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    model = tf.saved_model.load(sys.argv[1])
    text, tokens = model.signatures["serving_default"], model.signatures["serving_tokens"]
    answers = {}
    def ask(name, signature, **inputs):
        try:
            out = signature(**{k: tf.constant(v, tf.string) if not isinstance(v, tf.Tensor) else v
                               for k, v in inputs.items()})
            answers[name] = {k: v.shape.as_list() for k, v in out.items()}
            answers[name]["lengths_value"] = out["lengths"].numpy().tolist()
            answers[name]["tags_value"] = [[t.decode() for t in row if t] for row in out["tags"].numpy()]
        except tf.errors.InvalidArgumentError as e:
            answers[name] = {"error": e.message}
    ask("empty", text, sentence=[""])
    ask("blank", text, sentence=["   ", "\t"])
    ask("one_word", text, sentence=["Germany"])
    ask("empty_token", tokens, tokens=[[""]])
    ask("no_steps", tokens, tokens=tf.zeros([1, 0], tf.string))
    ask("no_rows", text, sentence=tf.zeros([0], tf.string))
    ask("no_rows_tokens", tokens, tokens=tf.zeros([0, 3], tf.string))
    ask("rank_2_text", text, sentence=[["EU rejects"]])
    ask("rank_1_tokens", tokens, tokens=["EU", "rejects"])
    print(json.dumps(answers))
""")


@pytest.mark.e2e
def test_pushed_tagger_answers_empty_sentences_and_batches_and_names_a_wrong_rank(ner_run):
    _, _, summary = ner_run
    answers = run_fresh(EDGE_REQUESTS, summary["pushed_model"])
    max_tokens = load_config("ner").task.max_tokens
    for name, rows in (("empty", 1), ("blank", 2), ("empty_token", 1), ("no_steps", 1)):
        assert answers[name]["lengths_value"] == [0] * rows, (name, answers[name])
        assert answers[name]["tags"] == [rows, max_tokens] and answers[name]["tags_value"] == [[]] * rows
    assert answers["one_word"]["lengths_value"] == [1] and len(answers["one_word"]["tags_value"][0]) == 1
    for name in ("no_rows", "no_rows_tokens"):
        assert answers[name]["lengths_value"] == [] and answers[name]["tags"] == [0, max_tokens], answers[name]
    assert "input `sentence` must be a 1-D batch of sentences, shape [batch]" in answers["rank_2_text"]["error"]
    assert "input `tokens` must be [batch, steps] strings" in answers["rank_1_tokens"]["error"]
