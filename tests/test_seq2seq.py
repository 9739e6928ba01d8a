"""The attention encoder-decoder and its core-TF decoders (models/seq2seq.py), on tiny models."""

import itertools
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

from rnnflow.models.recurrent import cudnn_eligibility
from rnnflow.models.seq2seq import (MAX_BEAM, MAX_LENGTH, MaskedCrossEntropy, Translator, beam_search,
                                    build_seq2seq, greedy_decode, length_penalty, score)
from rnnflow.pipeline.config import ModelConfig, TrainingConfig

PAD, START, END = 0, 1, 2
VOCAB = 8  # pad, start, end and the words 3..7
IDS = dict(start_id=START, end_id=END)
TRAINING = TrainingConfig(epochs=1, batch_size=32, learning_rate=0.01, lr_schedule="constant",
                          early_stopping_patience=1)


def config(**overrides):
    return ModelConfig(**{"units": 16, "embedding_dim": 8, "dropout": 0.0, **overrides})


def build(seed=1, vocab=VOCAB, model=None, **options):
    keras.utils.set_random_seed(seed)
    return build_seq2seq(model or config(), TRAINING, source_vocab=VOCAB, target_vocab=vocab, **options)


def pad(rows, width=None):
    width = width or max(1, max(len(r) for r in rows))
    return np.array([list(r) + [PAD] * (width - len(r)) for r in rows], np.int32)


def teacher_forcing_batch(sequences):
    """(model inputs, fit targets) for targets = the sources (the copy task)."""
    return ({"source_ids": pad(sequences), "target_in": pad([[START] + s for s in sequences])},
            pad([s + [END] for s in sequences]))


def limit(source, max_length):
    """The decoders' token limit: min(max_length, 2 * length + 10); 0 for an empty source."""
    return min(max_length, math.floor(2.0 * len(source) + 10.0)) if source else 0


def hypotheses(ids, lengths):
    return [list(row[:n]) for row, n in zip(np.asarray(ids), np.asarray(lengths))]


@pytest.fixture(scope="module")
def untrained():
    return build()


@pytest.fixture(scope="module")
def copy_model():
    """Overfit on 96 copy examples (words 3..7, 1 to 4 of them) in 300 steps."""
    rng = np.random.default_rng(0)
    sequences = [list(rng.integers(3, VOCAB, size=rng.integers(1, 5))) for _ in range(96)]
    model = build(seed=2)
    inputs, targets = teacher_forcing_batch(sequences)
    data = tf.data.Dataset.from_tensor_slices((inputs, targets)).shuffle(96, seed=0).repeat().batch(32)
    history = model.fit(data, steps_per_epoch=100, epochs=3, verbose=0)
    return model, sequences, history.history


def test_teacher_forced_logits_have_one_row_per_target_step_and_the_loss_ignores_padding(untrained):
    inputs, targets = teacher_forcing_batch([[3, 4, 5], [6]])
    logits = untrained(inputs).numpy()
    assert logits.shape == (2, 4, VOCAB) and logits.dtype == np.float32
    # Extra padding columns change neither the real steps' logits nor the loss.
    wider = {name: pad(ids, 7) for name, ids in inputs.items()}
    np.testing.assert_allclose(untrained(wider).numpy()[:, :4], logits, rtol=1e-5, atol=1e-6)
    loss = untrained.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    assert untrained.evaluate(wider, pad(targets, 7), verbose=0, return_dict=True)["loss"] == pytest.approx(loss, 1e-5)
    # The loss is the mean over real tokens only: garbage logits on padding do not count.
    garbage = np.where((targets == PAD)[..., None], 50.0 * np.random.default_rng(1).normal(size=logits.shape), logits)
    plain = MaskedCrossEntropy(label_smoothing=0.0)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_probs[b, t, targets[b, t]] for b, t in zip(*np.nonzero(targets))])
    assert float(plain(targets, garbage)) == pytest.approx(expected, rel=1e-5)
    smoothed = MaskedCrossEntropy(0.1)
    assert float(smoothed(targets, garbage)) == pytest.approx(float(smoothed(targets, logits)))


def test_the_model_overfits_a_copy_task_and_greedy_decoding_reproduces_it(copy_model):
    model, sequences, history = copy_model
    assert history["masked_accuracy"][-1] > 0.95
    decoded = greedy_decode(model, pad(sequences), max_length=20, **IDS)
    copied = hypotheses(decoded["ids"], decoded["lengths"])
    assert np.mean([c == s for c, s in zip(copied, sequences)]) >= 0.9
    best = beam_search(model, pad(sequences[:16]), beam_size=4, max_length=20, **IDS)
    assert np.mean([h == s for h, s in zip(hypotheses(best["ids"][:, 0], best["lengths"][:, 0]), sequences)]) >= 0.9


def python_greedy(model, source, max_length):
    """Greedy decoding the slow way: the teacher-forced model on the whole prefix, every step."""
    tokens, total = [], 0.0
    while True:
        logits = model({"source_ids": pad([source]), "target_in": np.array([[START] + tokens], np.int32)},
                       training=False).numpy()[0, -1].astype(np.float64)
        log_probs = logits - np.log(np.exp(logits).sum())
        allowed = log_probs.copy()
        allowed[[PAD, START]] = -np.inf
        token = END if len(tokens) >= limit(source, max_length) else int(np.argmax(allowed))
        total += log_probs[token]
        if token == END:
            return tokens, total
        tokens.append(token)


@pytest.mark.parametrize("which", ["untrained", "copy_model"])
def test_greedy_decoding_of_a_padded_batch_equals_the_step_by_step_argmax_of_each_source_alone(which, request):
    model = request.getfixturevalue(which)
    model = model[0] if isinstance(model, tuple) else model
    sources = [[3, 4, 5, 6], [7], [5, 3]]
    decoded = greedy_decode(model, pad(sources), max_length=6, **IDS)
    for row, source in enumerate(sources):
        tokens, total = python_greedy(model, source, max_length=6)
        assert hypotheses(decoded["ids"], decoded["lengths"])[row] == tokens
        assert decoded["ids"].numpy()[row, len(tokens)] == END
        assert float(decoded["log_probs"][row]) == pytest.approx(total, abs=1e-4)
        attention = decoded["attention"].numpy()[row, :len(tokens) + 1]
        np.testing.assert_allclose(attention[:, :len(source)].sum(-1), 1.0, rtol=1e-5)
        assert np.all(attention[:, len(source):] == 0.0)  # never on padding


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_finds_every_hypothesis_and_the_brute_force_best_when_the_beam_holds_them_all(alpha):
    model = build(seed=5, vocab=5)  # pad, start, end, words 3 and 4
    source, max_length = [3, 6, 4], 3
    candidates = [list(c) for n in range(max_length + 1) for c in itertools.product([3, 4], repeat=n)]  # 15
    log_likelihood = score(model, pad([source] * len(candidates)), pad([c + [END] for c in candidates]),
                           start_id=START).numpy()
    brute = sorted(((ll / float(length_penalty(len(c), alpha)), c) for ll, c in zip(log_likelihood, candidates)),
                   reverse=True)
    found = beam_search(model, pad([source]), beam_size=MAX_BEAM, max_length=max_length, length_penalty_alpha=alpha,
                        **IDS)
    assert hypotheses(found["ids"][0], found["lengths"][0])[0] == brute[0][1]
    np.testing.assert_allclose(found["scores"][0, :15], [s for s, _ in brute], rtol=1e-5)
    assert found["scores"][0, 15] == -np.inf  # 15 hypotheses exist; the 16th slot holds none


@pytest.mark.parametrize("which", ["untrained", "copy_model"])
def test_a_beam_of_one_without_length_penalty_is_greedy_decoding(which, request):
    model = request.getfixturevalue(which)
    model = model[0] if isinstance(model, tuple) else model
    sources = pad([[3, 4, 5, 6], [7], [], [5, 3]])
    greedy = greedy_decode(model, sources, max_length=8, **IDS)
    beam = beam_search(model, sources, beam_size=1, max_length=8, length_penalty_alpha=0.0, **IDS)
    np.testing.assert_array_equal(beam["ids"][:, 0], greedy["ids"])
    np.testing.assert_array_equal(beam["lengths"][:, 0], greedy["lengths"])
    np.testing.assert_allclose(beam["log_probs"][:, 0], greedy["log_probs"], rtol=1e-5)


def test_finished_hypotheses_keep_their_score_and_the_search_stops_once_all_are_finished(copy_model):
    model, sequences, _ = copy_model
    sources = sequences[:8]
    found = beam_search(model, pad(sources), beam_size=4, max_length=50, **IDS)
    ids, lengths, log_probs = found["ids"].numpy(), found["lengths"].numpy(), found["log_probs"].numpy()
    steps = ids.shape[-1]
    assert steps < max(limit(s, 50) for s in sources) + 1  # stopped early, not at the length limit
    assert steps == lengths.max() + 1  # ... right after the last hypothesis ended
    valid = np.isfinite(log_probs)
    rows, beams = np.nonzero(valid)
    # A finished hypothesis only grows padding at zero cost: its score is its tokens' score.
    assert any(lengths[r, b] + 1 < steps for r, b in zip(rows, beams))  # some finished before the last step
    targets = pad([list(ids[r, b, :lengths[r, b] + 1]) for r, b in zip(rows, beams)])
    assert np.all(targets[np.arange(len(rows)), lengths[rows, beams]] == END)
    assert all(np.all(ids[r, b, lengths[r, b] + 1:] == PAD) for r, b in zip(rows, beams))
    rescored = score(model, pad(sources)[rows], targets, start_id=START).numpy()
    np.testing.assert_allclose(log_probs[rows, beams], rescored, rtol=1e-4)
    np.testing.assert_allclose(found["scores"].numpy()[rows, beams],
                               rescored / length_penalty(lengths[rows, beams], 0.6).numpy(), rtol=1e-4)
    assert np.all(np.diff(found["scores"].numpy(), axis=1) <= 0)  # best first


@pytest.mark.parametrize("attention, cell, overrides, options", [
    ("bahdanau", "lstm", {}, {}),
    ("bahdanau", "gru", {"bidirectional": False, "layers": 2, "residual": True}, {"input_feeding": False}),
    ("luong_dot", "lstm", {"bidirectional": False}, {}),  # decoder.h . memory, no key projection
    ("luong_dot", "gru", {}, {}),  # bidirectional memory projected to the decoder width
    ("luong_general", "lstm", {"units": 8, "layer_norm": True}, {"tie_embeddings": True}),
    ("luong_general", "gru", {"dropout": 0.3}, {"input_feeding": False}),
])
def test_every_attention_and_cell_builds_gets_a_gradient_for_every_weight_and_decodes(attention, cell, overrides,
                                                                                      options):
    model = build(model=config(cell=cell, **overrides), attention=attention, **options)
    inputs, targets = teacher_forcing_batch([[3, 4, 5], [6, 7]])
    with tf.GradientTape() as tape:
        loss = model.loss(targets, model(inputs, training=True))
    gradients = tape.gradient(loss, model.trainable_variables)
    assert [v.path for v, g in zip(model.trainable_variables, gradients) if g is None] == []
    decoded = greedy_decode(model, inputs["source_ids"], max_length=4, **IDS)
    assert decoded["ids"].shape[0] == 2 and np.all(np.isfinite(decoded["log_probs"]))
    assert all(layer["eligible"] for layer in cudnn_eligibility(model))  # the encoder keeps cuDNN


def test_tied_embeddings_need_equal_widths_and_the_error_names_both_fields():
    with pytest.raises(ValueError, match=r"model\.units.*model\.embedding_dim"):
        build(model=config(units=16, embedding_dim=8), tie_embeddings=True)
    with pytest.raises(ValueError, match="attention"):
        build(attention="luong_concat")
    with pytest.raises(ValueError, match="model.cell"):
        build(model=config(cell="mingru"))


def test_under_mixed_precision_logits_and_decoding_stay_float32_and_finite():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = build(attention="luong_general")
        inputs, _ = teacher_forcing_batch([[3, 4, 5], [6]])
        logits = model(inputs)
        decoded = greedy_decode(model, pad([[3, 4, 5], []]), max_length=4, **IDS)
        assert model.get_layer("decoder").decoder_step.cell.compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert logits.dtype == tf.float32 and np.all(np.isfinite(logits))
    assert decoded["attention"].dtype == tf.float32 and np.all(np.isfinite(decoded["log_probs"]))


def test_the_model_round_trips_through_a_keras_file(tmp_path):
    model = build(seed=3, attention="luong_dot", tie_embeddings=True, label_smoothing=0.2,
                  model=config(units=8, cell="gru"))
    inputs, _ = teacher_forcing_batch([[3, 4, 5], [6]])
    model.save(tmp_path / "seq2seq.keras")
    reloaded = keras.saving.load_model(tmp_path / "seq2seq.keras", compile=False)
    np.testing.assert_allclose(reloaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert keras.losses.deserialize(keras.losses.serialize(model.loss)).label_smoothing == 0.2


def saved_op_types(path) -> set[str]:
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((path / "saved_model.pb").read_bytes())
    ops = set()
    for graph in saved.meta_graphs:
        functions = {f.signature.name for f in graph.graph_def.library.function}
        ops |= {node.op for node in graph.graph_def.node}
        ops |= {node.op for f in graph.graph_def.library.function for node in f.node_def}
    return ops - functions


def test_the_translator_saved_model_reloads_with_identical_outputs_and_only_core_ops(copy_model, tmp_path):
    model, sequences, _ = copy_model
    translator = Translator(model, **IDS)
    sources = tf.constant(pad(sequences[:3] + [[]]))
    targets = tf.constant(pad([s + [END] for s in sequences[:3]] + [[END]]))
    beam_args = (tf.constant(3), tf.constant(20), tf.constant(0.6))
    before = (translator.greedy(sources, tf.constant(20)), translator.beam_search(sources, *beam_args),
              translator.score(sources, targets))
    tf.saved_model.save(translator, str(tmp_path), signatures={
        "greedy": translator.greedy, "beam_search": translator.beam_search, "score": translator.score})
    loaded = tf.saved_model.load(str(tmp_path))
    after = (loaded.signatures["greedy"](source_ids=sources, max_length=tf.constant(20)),
             loaded.signatures["beam_search"](source_ids=sources, beam_size=beam_args[0], max_length=beam_args[1],
                                               length_penalty=beam_args[2]),
             loaded.signatures["score"](source_ids=sources, target_ids=targets))
    for first, second in zip(before, after):
        assert first.keys() == second.keys()
        for name in first:
            np.testing.assert_array_equal(first[name].numpy(), second[name].numpy(), err_msg=name)
    assert hypotheses(after[0]["ids"], after[0]["lengths"])[3] == []  # the empty source
    ops = saved_op_types(tmp_path)
    assert "While" in ops or "StatelessWhile" in ops
    assert not {op for op in ops if ">" in op or "PyFunc" in op or op_def_registry.get(op) is None}
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"beam_size must be in 1..{MAX_BEAM}"):
        loaded.beam_search(sources, tf.constant(MAX_BEAM + 1), beam_args[1], beam_args[2])
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"max_length must be in 1..{MAX_LENGTH}"):
        loaded.greedy(sources, tf.constant(0))


@pytest.mark.parametrize("argument, value", [("beam_size", 0), ("beam_size", -1), ("beam_size", MAX_BEAM + 1),
                                             ("max_length", 0), ("max_length", -3), ("max_length", MAX_LENGTH + 1)])
@pytest.mark.parametrize("as_tensor", [False, True])
def test_out_of_range_beam_size_or_max_length_fails_naming_the_argument_and_its_limits(untrained, argument, value,
                                                                                     as_tensor):
    limit_ = MAX_BEAM if argument == "beam_size" else MAX_LENGTH
    arguments = {"beam_size": 2, "max_length": 5, argument: tf.constant(value) if as_tensor else value}
    error = tf.errors.InvalidArgumentError if as_tensor else ValueError
    with pytest.raises(error, match=f"{argument} must be in 1..{limit_}"):
        beam_search(untrained, pad([[3, 4]]), **arguments, **IDS)
    if argument == "max_length":
        with pytest.raises(error, match=f"max_length must be in 1..{MAX_LENGTH}"):
            greedy_decode(untrained, pad([[3, 4]]), max_length=arguments["max_length"], **IDS)


def test_an_all_padding_source_gets_just_the_end_token(untrained):
    for sources in (pad([[3, 4, 5], []]), pad([[], []], width=3)):
        greedy = greedy_decode(untrained, sources, max_length=10, **IDS)
        beam = beam_search(untrained, sources, beam_size=4, max_length=10, **IDS)
        assert greedy["lengths"][-1] == 0 and greedy["ids"][-1, 0] == END
        assert np.all(greedy["attention"].numpy()[-1] == 0.0) and np.isfinite(greedy["log_probs"][-1])
        assert beam["lengths"][-1, 0] == 0 and beam["ids"][-1, 0, 0] == END and np.isfinite(beam["scores"][-1, 0])
        assert np.all(np.isneginf(beam["scores"][-1, 1:]))  # the only hypothesis
    assert greedy["ids"].shape[1] == 1 and beam["ids"].shape[2] == 1  # all empty: one step
