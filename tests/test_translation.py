"""The translation task: reading sentence pairs, the subword encoding, BLEU/chrF metrics, and the
pushed model's serving contract (greedy and beam signatures, bad requests, `rnnflow translate`)."""

import json
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli, run_fresh
from tf_serving_double import ModelServerDouble
from rnnflow.components.tasks.base import DataError
from rnnflow.components.translation import ingest, preprocessing, reading
from rnnflow.components.translation.metrics import Sentences, corpus_scores
from rnnflow.pipeline.config import ConfigError, load_config


def config_for(path, *overrides):
    return load_config("translate", [f"data.path={path}", *overrides])


def write(path, text: str | bytes):
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def pairs(count: int, prefix: str = "s") -> str:
    return "".join(f"{prefix} {i} is here.\tphrase {i} est là.\n" for i in range(count))


# ---------------------------------------------------------------------------
# Reading and the input report
# ---------------------------------------------------------------------------

def test_tsv_pairs_ignore_extra_columns_and_can_swap_direction(tmp_path):
    path = write(tmp_path / "p.tsv", "Hello.\tBonjour.\tCC-BY 2.0 (France) Attribution: tatoeba.org\n\nBye.\tSalut.\n")
    assert reading.read_pairs(config_for(path).data, [str(path)]).pairs == [("Hello.", "Bonjour."), ("Bye.", "Salut.")]
    swapped = config_for(path, "data.source_column=1", "data.target_column=0")
    assert reading.read_pairs(swapped.data, [str(path)]).pairs[0] == ("Bonjour.", "Hello.")


def test_a_line_without_the_separator_is_an_error_naming_the_line(tmp_path):
    path = write(tmp_path / "p.tsv", "Hello.\tBonjour.\nno tab on this line\n")
    with pytest.raises(DataError, match=r"p.tsv: line 2: no tab; a pair needs 2"):
        reading.read_pairs(config_for(path).data, [str(path)])


def test_invalid_utf8_is_an_error_naming_file_and_line(tmp_path):
    path = write(tmp_path / "p.tsv", b"Hello.\tBonjour.\nCaf\xe9.\tCaf\xe9.\n")
    with pytest.raises(DataError, match=r"p.tsv: line 2: invalid UTF-8"):
        reading.read_pairs(config_for(path).data, [str(path)])


def test_misaligned_parallel_files_name_both_files_and_their_line_counts(tmp_path):
    write(tmp_path / "train.de", "Hallo.\nTschüss.\nJa.\n")
    write(tmp_path / "train.en", "Hello.\nBye.\n")
    config = config_for(tmp_path / "train.de", "data.format=parallel", "data.source_suffix=.de",
                        "data.target_suffix=.en")
    with pytest.raises(DataError, match=r"misaligned parallel files: .*train.de has 3 lines and .*train.en has 2"):
        reading.read_pairs(config.data, [str(tmp_path / "train.de")])
    write(tmp_path / "train.en", "Hello.\nBye.\nYes.\n")
    assert reading.read_pairs(config.data, [str(tmp_path / "train.de")]).pairs[1] == ("Tschüss.", "Bye.")


def test_parallel_format_without_suffixes_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="data.format: parallel needs data.source_suffix and data.target_suffix"):
        config_for(write(tmp_path / "train.de", "Hallo.\n"), "data.format=parallel")


def test_jsonl_pairs_and_a_missing_field_named_by_line(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"source": "Hi.", "target": "Salut."}\n{"source": "Yes."}\n')
    with pytest.raises(DataError, match=r"p.jsonl: line 2: field 'target' is missing"):
        reading.read_pairs(config_for(path, "data.format=jsonl").data, [str(path)])


@pytest.mark.parametrize("line, message", [
    ("not json", r"p.jsonl: line 2: not JSON \(Expecting value at column 1\)"),
    ('["Hi.", "Salut."]', r"p.jsonl: line 2: expected a JSON object with 'source' and 'target', got list"),
    (b'{"source": "Caf\xe9", "target": "x"}', r"p.jsonl: line 2: invalid UTF-8"),
])
def test_a_jsonl_line_that_is_not_a_json_object_or_not_utf8_is_named_by_line(tmp_path, line, message):
    path = tmp_path / "p.jsonl"
    first = b'{"source": "Hi.", "target": "Salut."}\n'
    path.write_bytes(first + (line if isinstance(line, bytes) else line.encode()) + b"\n")
    with pytest.raises(DataError, match=message):
        reading.read_pairs(config_for(path, "data.format=jsonl").data, [str(path)])


def test_empty_sides_are_skipped_and_counted_long_pairs_and_repeats_reported(tmp_path):
    long = " ".join(["word"] * 80)
    text = pairs(60) + "\tOrphan target.\nOrphan source.\t \n" + f"{long}\tlong.\n" + "s 1 is here.\tphrase 1 est là.\n"
    path = write(tmp_path / "p.tsv", text)
    report = ingest.PairIngest().preflight(config_for(path))
    assert report.details["empty_pairs_skipped"] == 2 and report.rows == 62
    assert any("2 pairs of the train split have an empty source or target" in w and "p.tsv:61" in w
               for w in report.warnings)
    assert any("1 pairs of the train split have more words than task.max_source_tokens=64" in w
               for w in report.warnings)
    assert any("1 pairs of the train split repeat an earlier pair" in n for n in report.notes)


def test_the_eval_split_is_by_source_so_a_repeated_source_sits_in_one_split(tmp_path):
    text = "".join(f"sentence {i}.\ttranslation {i}.\nsentence {i}.\tversion {i}.\n" for i in range(200))
    path = write(tmp_path / "p.tsv", text)
    config = config_for(path)
    rows = ingest.PairIngest().split(config, reading.read_pairs(config.data, [str(path)]))
    sources = {split: {s for s, _ in split_rows} for split, split_rows in rows.items()}
    assert sources["train"] and sources["eval"] and not sources["train"] & sources["eval"]
    assert len(rows["eval"]) == 2 * len(sources["eval"])


def test_too_few_pairs_and_a_source_shared_with_the_test_file_are_reported(tmp_path):
    with pytest.raises(DataError, match="a translation model needs at least 20 train and 5 eval pairs"):
        ingest.PairIngest().preflight(config_for(write(tmp_path / "few.tsv", pairs(6))))
    train = write(tmp_path / "train.tsv", pairs(100))
    test = write(tmp_path / "test.tsv", pairs(3) + pairs(5, prefix="t"))
    report = ingest.PairIngest().preflight(config_for(train, f"data.test_path={test}"))
    leaks = [w for w in report.warnings if w.startswith("leakage:") and "pairs of the test split also occur" in w]
    assert leaks and "is here." in leaks[0], report.warnings


# ---------------------------------------------------------------------------
# The subword encoding (the same functions Transform and serving run)
# ---------------------------------------------------------------------------

def encoder(tmp_path, pieces, **options):
    vocabulary = write(tmp_path / "vocab.txt", "\n".join(pieces) + "\n")
    return preprocessing.Encoder(str(vocabulary), len(pieces), lowercase=options.get("lowercase", False),
                                 max_tokens=options.get("max_tokens", 64))


def test_candidate_pieces_split_punctuation_off_and_include_every_character():
    words = preprocessing.split_words(tf.constant(["The dog's toy."]), lowercase=False)
    candidates = {c.decode() for c in preprocessing.candidates(words).numpy()}
    assert {"The", "dog", "##'", "##s", "toy", "##."} <= candidates
    assert {"T", "##h", "d", "##y", "##."} <= candidates


def test_words_outside_the_vocabulary_are_spelled_from_characters_and_detokenize_back(tmp_path):
    pieces = ["the", "dog", "##.", "z", "##e", "##b", "##r", "##a", "##!"]
    encode = encoder(tmp_path, pieces)
    ids, cut = encode(tf.constant(["the zebra!", "the dog.", "", "the \xff dog"]))
    first = FIRST = 3  # schema.FIRST_ID: pad, start and end come first
    assert ids[0].numpy().tolist() == [FIRST + 0, FIRST + 3, FIRST + 4, FIRST + 5, FIRST + 6, FIRST + 7, FIRST + 8]
    assert ids[2].numpy().tolist() == [] and cut.numpy().tolist() == [0, 0, 0, 0]
    unknown = first + len(pieces)
    assert unknown in ids[3].numpy().tolist()  # an unseen character: the unknown id, no error
    tokens = tf.constant(preprocessing.id_tokens(pieces))
    dense = ids.to_tensor(0)
    text = preprocessing.detokenize(tokens, dense, ids.row_lengths())
    assert [t.decode() for t in text.numpy()[:3]] == ["the zebra!", "the dog.", ""]


def test_the_schema_ids_are_the_models():
    from rnnflow.components.translation import schema
    from rnnflow.models import seq2seq

    assert schema.PAD_ID == seq2seq.PAD_ID and schema.FIRST_ID > max(schema.PAD_ID, schema.START_ID, schema.END_ID)


def test_a_long_source_is_cut_to_max_tokens_and_the_cut_is_counted(tmp_path):
    encode = encoder(tmp_path, ["a", "b"], max_tokens=5)
    ids, cut = encode(tf.constant([" ".join(["a"] * 10_000), "b"]))
    assert ids.row_lengths().numpy().tolist() == [5, 1] and cut.numpy().tolist() == [9995, 0]


class VocabularyFiles:
    """What the export reads of a TFTransformOutput: the vocabulary files by name."""

    def __init__(self, files: dict):
        self.files = files

    def vocabulary_file_by_name(self, name):
        return self.files[name]

    def vocabulary_by_name(self, name):
        with open(self.files[name], "rb") as f:
            return f.read().splitlines()


def test_the_saved_models_greedy_translation_is_pythons_greedy_decoding_token_for_token(tmp_path):
    import dataclasses

    from rnnflow.components.translation import export
    from rnnflow.components.translation.schema import SOURCE_VOCABULARY, TARGET_VOCABULARY
    from rnnflow.models.seq2seq import build_seq2seq
    from rnnflow.pipeline.config import ModelConfig, TrainingConfig

    pieces = ["the", "dog", "cat", "runs", "##.", "a", "le", "chien", "chat", "court", "un", "##s", "r", "##u", "##n"]
    vocabulary = write(tmp_path / "pieces.txt", "\n".join(pieces) + "\n")
    task = dataclasses.replace(load_config("translate", []).task, beam_size=3)
    tf.keras.utils.set_random_seed(1)
    model = build_seq2seq(ModelConfig(cell="gru", units=8, embedding_dim=8, dropout=0.0),
                          TrainingConfig(epochs=1, batch_size=4, learning_rate=0.01, lr_schedule="constant"),
                          source_vocab=len(pieces) + 4, target_vocab=len(pieces) + 4)
    files = VocabularyFiles({SOURCE_VOCABULARY: str(vocabulary), TARGET_VOCABULARY: str(vocabulary)})
    export.export_serving_model(model, files, task, str(tmp_path / "model"))
    loaded = tf.saved_model.load(str(tmp_path / "model"))
    sources = tf.constant(["the dog runs.", "a cats run", ""])
    served = loaded.signatures["serving_default"](source=sources)
    ids, _ = preprocessing.Encoder(str(vocabulary), len(pieces), lowercase=False, max_tokens=64)(sources)
    python = export.decode_greedy(model, ids.to_tensor(0), task)
    assert served["length"].numpy().tolist() == python["lengths"].numpy().tolist()
    assert max(python["lengths"].numpy()) > 3  # an untrained model rambles: a real sequence to compare
    tokens = np.array(preprocessing.id_tokens(pieces), dtype=object)
    expected = [" ".join(tokens[row[:n]]).replace(" ##", "") for row, n in
                zip(python["ids"].numpy(), python["lengths"].numpy())]
    assert [t.decode() for t in served["translation"].numpy()] == expected
    np.testing.assert_allclose(served["score"].numpy(), python["log_probs"].numpy(), rtol=1e-5, atol=1e-5)
    pieces_served = loaded.signatures["attention"](source=sources)["target_pieces"].numpy()
    for row, n, served_row in zip(python["ids"].numpy(), python["lengths"].numpy(), pieces_served):
        assert [p.decode() for p in served_row[:n]] == list(tokens[row[:n]])


# ---------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------

def test_bleu_and_chrf_are_sacrebleu_corpus_scores_as_floats_over_merged_accumulators():
    import sacrebleu

    references = ["The cat sat on the mat.", "A dog runs in the park.", "He is here."]
    greedy = ["The cat sat on a mat.", "A dog is running in the park.", "He is there."]
    beam = ["The cat sat on the mat.", "A dog runs in a park.", "He is here."]
    first, second = Sentences(beam=True), Sentences(beam=True)
    for accumulator, rows in ((first, range(2)), (second, range(2, 3))):
        for i in rows:
            accumulator.add({"target": np.array([references[i].encode()])},
                            np.array([greedy[i].encode(), beam[i].encode()], dtype=object))
    scores = first.merge(second).scores()
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(greedy, [references]).score)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(greedy, [references]).score)
    assert scores["bleu_beam"] == pytest.approx(sacrebleu.corpus_bleu(beam, [references]).score)
    assert all(isinstance(v, float) for v in scores.values()) and scores["bleu_beam"] > scores["bleu"]
    assert corpus_scores(["x"], ["X"])["bleu_lowercase"] >= corpus_scores(["x"], ["X"])["bleu"]


# ---------------------------------------------------------------------------
# End to end: `rnnflow run --config translate` (session fixture `translate_run`).
# ---------------------------------------------------------------------------

@pytest.mark.e2e
def test_translate_run_reports_greedy_and_beam_bleu_on_eval_and_test_and_draws_attention(translate_run):
    output_dir, _, summary = translate_run
    for metrics in (summary["metrics"], summary["test_metrics"]):
        assert {"bleu", "bleu_lowercase", "chrf", "bleu_beam", "chrf_beam"} <= set(metrics)
        assert all(0 <= metrics[k] <= 100 for k in ("bleu", "chrf", "bleu_beam"))
    assert summary["sacrebleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    example = summary["attention_examples"][0]
    weights = np.array(example["weights"])
    assert weights.shape == (len(example["target_pieces"]), len(example["source_pieces"]))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=0.01)
    assert (output_dir / "attention.png").stat().st_size > 1000
    validation = summary["serving_validation"]
    assert validation["unknown_ops"] == [] and not validation.get("cudnn_ops")
    # The Trainer's greedy decoding in memory and the SavedModel's, on the same eval sources.
    assert all(v["within_tolerance"] for v in validation["skew"]["outputs"].values()), validation["skew"]


FRESH_TRANSLATION = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    model = tf.saved_model.load(sys.argv[1])
    greedy, beam, score = (model.signatures[n] for n in ("serving_default", "translate_beam", "score"))
    sources = ["I am happy.", "", " ".join(["word"] * 10000), "\\u6211\\u662f\\u5b66\\u751f", "Caf\\udcff"]
    raw = tf.constant([s.encode("utf-8", "surrogateescape") for s in sources])
    answer = greedy(source=raw)
    one = beam(source=raw[:1], beam_size=tf.constant(1), max_length=tf.constant(200))
    five = beam(source=raw[:1], beam_size=tf.constant(5), max_length=tf.constant(200))
    scored = score(source=raw[:1], target=answer["translation"][:1])
    errors = {}
    for name, (size, length) in {"beam_0": (0, 50), "beam_negative": (-1, 50), "beam_17": (17, 50),
                                 "length_0": (2, 0), "length_huge": (2, 10**6)}.items():
        try:
            beam(source=raw[:1], beam_size=tf.constant(size), max_length=tf.constant(length))
            errors[name] = None
        except tf.errors.InvalidArgumentError as e:
            errors[name] = e.message
    print(json.dumps({
        "translations": [t.decode("utf-8") for t in answer["translation"].numpy()],
        "truncated": answer["truncated"].numpy().tolist(), "greedy_score": float(answer["score"][0]),
        "scored": float(scored["log_likelihood"][0]),
        "beam_1": one["translation"].numpy()[0].decode(), "beam_5_shape": five["translations"].shape.as_list(),
        "beam_5_scores": five["scores"].numpy()[0].tolist(),
        "errors": errors, "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("rnnflow", "tfx"))}))
""")


@pytest.mark.e2e
def test_pushed_translation_model_serves_text_and_refuses_bad_settings_in_a_fresh_process(translate_run):
    _, _, summary = translate_run
    answer = run_fresh(FRESH_TRANSLATION, summary["pushed_model"])
    assert answer["modules"] == []
    translations = answer["translations"]
    assert translations[1] == ""  # an empty source: an empty translation, no error
    assert answer["truncated"][2] == 10_000 - 64 and answer["truncated"][0] == 0  # cut, and counted
    assert isinstance(translations[3], str) and isinstance(translations[4], str)  # another script, bad bytes
    # The greedy score is the log-likelihood `score` gives the same translation.
    assert answer["greedy_score"] == pytest.approx(answer["scored"], rel=1e-3, abs=1e-3)
    assert answer["beam_5_shape"] == [1, 5] and answer["beam_5_scores"] == sorted(answer["beam_5_scores"], reverse=True)
    for name in ("beam_0", "beam_negative", "beam_17"):
        assert "beam_size must be in 1..16" in answer["errors"][name], answer["errors"]
    for name in ("length_0", "length_huge"):
        assert "max_length must be in 1..1024" in answer["errors"][name], answer["errors"]


@pytest.mark.e2e
def test_rnnflow_translate_prints_one_translation_per_sentence_and_names_bad_settings(translate_run):
    output_dir, _, _ = translate_run
    serving = str(output_dir / "serving" / "translate")
    greedy = run_cli(["translate", "--model", serving, "--text", "I am happy.", "--text", "Where is the station?"])
    assert greedy.returncode == 0, greedy.stderr[-2000:]
    assert greedy.stdout.count("\n") == 2  # one line per sentence (a tiny model's may be empty)
    beam = run_cli(["translate", "--model", serving, "--text", "I am happy.", "--beam-size", "4"])
    assert beam.returncode == 0 and beam.stdout.count("\n") == 1, beam.stderr[-2000:]
    bad = run_cli(["translate", "--model", serving, "--text", "x", "--beam-size", "99"])
    assert bad.returncode == 2 and "--beam-size 99: must be between 1 and 16" in bad.stderr
    none = run_cli(["translate", "--model", serving])
    assert none.returncode == 2 and "--text: give at least one sentence" in none.stderr


@pytest.mark.e2e
def test_rnnflow_predict_translates_a_file_of_sources_row_by_row(translate_run, tmp_path):
    output_dir, _, _ = translate_run
    source = write(tmp_path / "sources.csv", "id,source\na,I am hungry.\nb,\nc,Where is the station?\n")
    result = run_cli(["predict", "--model", str(output_dir / "serving" / "translate"), "--input", str(source),
                      "--output", str(tmp_path / "out.jsonl")])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert all(isinstance(r["translation"], str) for r in rows)
    assert rows[1]["translation"] == "" and rows[1]["length"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_rnnflow_translate_answers_over_rest_and_grpc_as_from_the_saved_model(translate_run, transport):
    output_dir, _, _ = translate_run
    serving = str(output_dir / "serving" / "translate")
    sentence = ["--text", "I am happy.", "--text", "It is raining."]
    local = run_cli(["translate", "--model", serving, *sentence, "--beam-size", "3"])
    with ModelServerDouble("translate", serving) as server:  # a localhost double on the real protos
        target = server.rest_url if transport == "rest" else f"grpc://{server.grpc_address}"
        remote = run_cli(["translate", "--model", target, "--model-name", "translate", *sentence, "--beam-size", "3"])
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr[-2000:]
    assert remote.stdout == local.stdout
