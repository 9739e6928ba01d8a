"""The language model task (`charlm`): contiguous splits and windows, bad text files, and one
end-to-end run on the IMDB sample's reviews whose pushed model generates and scores in a fresh
TensorFlow-only process and through `rnnflow generate`."""

import math
import textwrap

import pytest

from conftest import run_cli, run_fresh
from rnnflow.components.language_model.reading import split_texts
from rnnflow.components.language_model.schema import eval_window_size
from rnnflow.components.tasks import DataError, get_task
from rnnflow.pipeline.config import ConfigError, load_config

TASK = get_task("language_model")


def config_for(path, *overrides):
    return load_config("charlm", [f"data.path={path}", *overrides])


def test_a_document_is_split_into_a_train_head_and_an_eval_tail_and_cut_into_overlapping_windows(tmp_path):
    path = tmp_path / "doc.txt"
    path.write_text("abcdefghijklmnopqrstuvwxyz" * 4, encoding="utf-8")  # 104 characters
    config = config_for(path, "data.format=text", "task.window=9", "data.split.eval_fraction=0.25")
    splits = split_texts(config, [str(path)])
    text = path.read_text()
    assert "".join(splits.tokens["train"]) == text[:78] and "".join(splits.tokens["eval"]) == text[78:]
    train = splits.windows["train"]
    assert all(len(w) == 10 for w in train) and train[0] == text[:10] and train[1] == text[9:19]
    assert len(train) == (78 - 1) // 9  # every character but the first predicted once; the partial window dropped
    report = TASK.preflight(config)
    assert report.details["train_windows"] == len(train) and report.rows == len(train) + len(splits.windows["eval"])


def test_eval_windows_are_eval_window_long_and_a_shorter_eval_split_is_one_window_never_shorter_than_training(tmp_path):
    path = tmp_path / "doc.txt"
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    path.write_text(text, encoding="utf-8")
    tail = text[800:]  # eval_fraction 0.2: 200 characters
    splits = split_texts(config_for(path, "data.format=text", "task.window=9", "task.eval_window=50",
                                    "data.split.eval_fraction=0.2"), [str(path)])
    assert all(len(w) == 10 for w in splits.windows["train"])
    # Windows of 51 characters every 50: every eval character but the first scored once from a
    # zero state, the partial last window dropped.
    assert splits.windows["eval"] == [tail[i:i + 51] for i in range(0, 150, 50)]
    whole = split_texts(config_for(path, "data.format=text", "task.window=9", "data.split.eval_fraction=0.2"),
                        [str(path)])
    assert whole.windows["eval"] == [tail]  # the default 1000 > 199: the whole eval split, one window
    long_training = split_texts(config_for(path, "data.format=text", "task.window=60", "task.eval_window=20",
                                           "data.split.eval_fraction=0.2"), [str(path)])
    assert [len(w) for w in long_training.windows["eval"]] == [61, 61, 61]  # never shorter than task.window


def test_lines_are_split_between_whole_texts_joined_by_line_breaks(tmp_path):
    path = tmp_path / "lines.txt"
    lines = [f"line number {i:02d} of the corpus" for i in range(20)]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    splits = split_texts(config_for(path, "data.format=lines", "task.window=5"), [str(path)])
    assert "".join(splits.tokens["train"]) == "".join(line + "\n" for line in lines[:18])
    assert "".join(splits.tokens["eval"]) == "".join(line + "\n" for line in lines[18:])


def test_word_windows_hold_whitespace_separated_words(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text(" ".join(f"w{i}" for i in range(60)), encoding="utf-8")
    splits = split_texts(config_for(path, "data.format=text", "task.tokenizer=word", "task.window=4"), [str(path)])
    assert splits.windows["train"][0] == "w0 w1 w2 w3 w4" and splits.windows["train"][1] == "w4 w5 w6 w7 w8"


def test_a_csv_with_a_byte_order_mark_finds_its_text_column(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufefftext\n".encode("utf-8") + "".join(f"review {i} of many words\n" for i in range(200)).encode())
    splits = split_texts(config_for(path, "data.format=csv", "data.text_column=text", "task.window=20"), [str(path)])
    assert "".join(splits.tokens["train"]).startswith("review 0 of many words\n")


@pytest.mark.parametrize("content, message", [
    (b"\x00" * 5000, r"nul.txt: line 1: a NUL byte: not UTF-8 text"),
    (bytes(range(128, 256)) * 20, r"nul.txt: line 1: invalid UTF-8 .*is it a binary or compressed file\?"),
])
def test_binary_files_are_named_as_binary_not_as_text_to_re_encode(tmp_path, content, message):
    path = tmp_path / "nul.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        TASK.preflight(config_for(path, "data.format=text"))


def test_bad_text_files_are_errors_naming_the_file(tmp_path):
    invalid = tmp_path / "invalid.txt"
    invalid.write_bytes(b"fine line\nbad \xff byte\n" * 50)
    with pytest.raises(DataError, match=r"invalid.txt: line 2: invalid UTF-8 \(byte 0xff at byte 4"):
        TASK.preflight(config_for(invalid, "data.format=lines"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.txt: no text"):
        TASK.preflight(config_for(empty, "data.format=text"))
    short = tmp_path / "short.txt"
    short.write_text("x" * 500, encoding="utf-8")
    with pytest.raises(DataError, match=r"the eval split has 50 char tokens, fewer than one window of task.window \+ 1 = 101"):
        TASK.preflight(config_for(short, "data.format=text"))
    table = tmp_path / "table.csv"
    table.write_text("review,label\nok,1\n", encoding="utf-8")
    with pytest.raises(DataError, match="column 'text' not found; columns: review, label"):
        TASK.preflight(config_for(table))


def test_a_language_model_config_refuses_a_bidirectional_or_unsteppable_model():
    with pytest.raises(ConfigError, match="model.bidirectional: a language model reads left to right"):
        load_config("charlm", ["model.bidirectional=true"])
    with pytest.raises(ConfigError, match="model.cell: 'simple_rnn' cannot generate step by step"):
        load_config("charlm", ["model.cell=simple_rnn"])
    assert load_config("charlm").model.bidirectional is False


# ---------------------------------------------------------------------------
# End to end: `rnnflow run --config charlm` (session fixture `charlm_run`).
# ---------------------------------------------------------------------------

@pytest.mark.e2e
def test_charlm_run_reports_nats_and_bits_per_character_and_perplexity(charlm_run):
    _, _, summary = charlm_run
    metrics = summary["metrics"]
    assert summary["status"] == "succeeded"
    assert 0 < metrics["nats_per_char"] < load_config("charlm", ["evaluation.max_nats_per_token=5"]).evaluation.max_nats_per_token
    assert metrics["bits_per_char"] == pytest.approx(metrics["nats_per_char"] / math.log(2), rel=1e-5)
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["nats_per_char"]), rel=1e-5)
    # TFMA's eval cross-entropy is the Trainer's own on the same windows (Keras' val_loss, best epoch),
    # and those are eval windows: task.eval_window characters each, not the training windows' 100.
    assert metrics["nats_per_char"] == pytest.approx(min(summary["training"]["history"]["val_loss"]), rel=1e-3)
    details, task = summary["input"]["details"], load_config("charlm").task
    size = eval_window_size(task, details["eval_tokens"])
    assert size == task.eval_window > task.window and details["eval_windows"] == (details["eval_tokens"] - 1) // size
    assert summary["serving_validation"]["served_signature"] == "score"


FRESH_GENERATION = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    model = tf.saved_model.load(sys.argv[1])
    generate, score = model.signatures["serving_default"], model.signatures["score"]

    def sample(prompts, max_length=500, temperature=1.0, top_k=0, seed=7):
        return generate(prompt=tf.constant(prompts), max_length=tf.constant(max_length, tf.int32),
                        temperature=tf.constant(temperature), top_k=tf.constant(top_k, tf.int32),
                        seed=tf.constant(seed, tf.int64))

    prompt = "This movie was"
    first, again, other = sample([prompt]), sample([prompt]), sample([prompt], seed=8)
    text = first["text"].numpy()[0].decode()
    whole, alone = score(text=tf.constant([prompt + text])), score(text=tf.constant([prompt]))
    errors = {}
    for name, settings in {"max_length": {"max_length": 100000}, "temperature": {"temperature": 0.0},
                           "negative_temperature": {"temperature": -1.0}, "top_k": {"top_k": -1}}.items():
        try:
            sample([prompt], **settings)
            errors[name] = None
        except tf.errors.InvalidArgumentError as e:
            errors[name] = e.message
    print(json.dumps({
        "text": text, "again": again["text"].numpy()[0].decode(), "other": other["text"].numpy()[0].decode(),
        "generated_log_prob": float(tf.reduce_sum(first["log_probs"])),
        "scored_log_prob": float(whole["log_likelihood"][0] - alone["log_likelihood"][0]),
        "empty": sample([prompt], max_length=0)["text"].numpy()[0].decode(),
        "unknown": int(sample(["\\u2603\\u2603 snow"], max_length=3)["unknown_tokens"][0]),
        "errors": errors,
        "modules": sorted(m for m in sys.modules if m.split(".")[0] in ("rnnflow", "tfx"))}))
""")


@pytest.mark.e2e
def test_pushed_language_model_generates_and_scores_consistently_in_a_fresh_process(charlm_run):
    _, _, summary = charlm_run
    answer = run_fresh(FRESH_GENERATION, summary["pushed_model"])
    assert answer["modules"] == []
    assert len(answer["text"]) == 500 and answer["again"] == answer["text"] and answer["other"] != answer["text"]
    # Sampling at temperature 1 over every token: the step-by-step generator's log-probabilities are
    # the model's own, as scoring the prompt and its continuation in one pass gives them.
    assert answer["generated_log_prob"] == pytest.approx(answer["scored_log_prob"], rel=1e-3, abs=1e-2)
    assert answer["empty"] == "" and answer["unknown"] == 2
    assert "max_length must be in 0..10000" in answer["errors"]["max_length"]
    assert "temperature must be above 0" in answer["errors"]["temperature"]
    assert "temperature must be above 0" in answer["errors"]["negative_temperature"]
    assert "top_k must be 0 (all tokens) or more" in answer["errors"]["top_k"]


@pytest.mark.e2e
def test_rnnflow_generate_prints_a_seeded_sample_and_names_bad_settings(charlm_run):
    output_dir, _, _ = charlm_run
    serving = str(output_dir / "serving" / "charlm")
    first = run_cli(["generate", "--model", serving, "--prompt", "The film", "--max-length", "40", "--seed", "3"])
    again = run_cli(["generate", "--model", serving, "--prompt", "The film", "--max-length", "40", "--seed", "3"])
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout == again.stdout and first.stdout.startswith("The film")
    assert len(first.stdout.rstrip("\n")) >= len("The film") + 30  # 40 characters (some may be line breaks)
    bad = run_cli(["generate", "--model", serving, "--temperature", "0"])  # refused before the model loads
    assert bad.returncode == 2 and "--temperature 0.0: must be a finite number above 0" in bad.stderr
