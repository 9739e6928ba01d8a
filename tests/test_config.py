"""Config loading: every kind of bad value is an error that names the field."""

import re

import pytest

from rnnflow.pipeline.config import (ConfigError, apply_overrides, builtin_config_names, load_config,
                                     parse_config, read_raw_config, resolve_path)


def _raw(**sections):
    raw = read_raw_config("sentiment")
    for key, value in sections.items():
        raw[key] = value
    return raw


def test_builtin_sentiment_loads_with_typed_sections():
    config = load_config("sentiment")
    assert "sentiment" in builtin_config_names()
    assert config.task_type == "text_classification"
    assert config.model.cell == "lstm" and config.model.bidirectional is True
    assert config.data.split.train_buckets == 3
    assert resolve_path(config.data.path).endswith("imdb_small_with_labels.txt")


def test_config_from_a_file_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntask: {type: text_classification}\ndata: {path: /data/x.csv}\n")
    config = load_config(str(path))
    assert config.name == "mine"
    assert config.task.max_tokens == "auto"  # default: measured on the training texts
    assert config.training.epochs == "auto"  # default: from the training steps


def test_overrides_parse_yaml_values():
    config = load_config("sentiment", ["training.epochs=3", "model.bidirectional=false",
                                       "runner.beam_args=[--a=1, --b]", "evaluation.slice_feature=genre"])
    assert config.training.epochs == 3
    assert config.model.bidirectional is False
    assert config.runner.beam_args == ("--a=1", "--b")
    assert config.evaluation.slice_feature == "genre"


@pytest.mark.parametrize("override, message", [
    ("training.epochs=ten", "training.epochs: expected an integer or auto, got 'ten'"),
    ("training.epochs=2.5", "training.epochs: expected an integer or auto, got 2.5"),
    ("training.epochs=0", "training.epochs: 0 is out of range; must be >= 1"),
    ("training.learning_rate=0", "training.learning_rate: 0.0 is out of range; must be > 0"),
    ("model.dropout=1.5", "model.dropout: 1.5 is out of range; must be <= 1"),
    ("model.cell=lsmt", "model.cell: 'lsmt' is not one of: lstm, gru, simple_rnn, mingru"),
    ("model.bidirectional=maybe", "model.bidirectional: expected true or false, got 'maybe'"),
    ("data.format=xlsx", "data.format: 'xlsx' is not one of: csv, tfrecord, parquet"),
    ("task.tokenizer=bpe", "task.tokenizer: 'bpe' is not one of: word, char"),
    ("evaluation.metric=f1", "evaluation.metric: 'f1' is not one of: accuracy, auc, precision, recall"),
    ("data.txt_column=review", "data.txt_column: unknown field (did you mean 'text_column'?)"),
    ("model.celll=gru", "model.celll: unknown field (did you mean 'cell'?)"),
    ("extra=1", "extra: unknown field"),
    ("data.label_column=text", "data.label_column: 'text' is also data.text_column"),
    ("evaluation.slice_feature=text", "evaluation.slice_feature: cannot slice by the free-text column"),
    ("runner.beam_args=--x", "runner.beam_args: expected a list"),
    ("data.split=3", "data.split: expected a mapping"),
    ("task.type=summarization", "task.type: 'summarization' is not one of: forecasting, language_model, sequence_labeling, "
                                "text_classification, translation"),
])
def test_bad_values_name_the_field_value_and_allowed(override, message):
    with pytest.raises(ConfigError) as error:
        load_config("sentiment", [override])
    assert message in str(error.value)


def test_missing_required_field():
    raw = _raw(data={"text_column": "t"})
    with pytest.raises(ConfigError, match="data.path: required field is missing"):
        parse_config(raw)


def test_missing_task_type():
    with pytest.raises(ConfigError, match="task.type: required; allowed: forecasting, language_model, sequence_labeling, text_classification"):
        parse_config(_raw(task={"tokenizer": "word"}))


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides({}, ["training.epochs"])
    with pytest.raises(ConfigError, match="'training' is a value, not a section"):
        apply_overrides({"training": 3}, ["training.epochs=2"])


def test_unknown_config_name_lists_builtins():
    with pytest.raises(ConfigError, match="built-in configs: .*sentiment"):
        load_config("no-such-config")


def test_invalid_yaml_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(path))


def test_config_round_trips_through_custom_config_json():
    import json

    config = load_config("sentiment", ["runner.beam_args=[--a]"])
    assert parse_config(json.loads(json.dumps(config.to_dict()))) == config


TUNING_ON = ["tuning.enabled=true"]


def test_search_space_accepts_nested_or_dotted_fields():
    config = load_config("sentiment", [*TUNING_ON, "tuning.search_space.model.cell=[lstm, gru, mingru]",
                                       "tuning.search_space={training.learning_rate: {min: 0.0001, max: 0.01, "
                                       "sampling: log}, model.cell: [gru]}"])
    assert config.tuning.search_space == {
        "training.learning_rate": {"min": 0.0001, "max": 0.01, "sampling": "log"}, "model.cell": ["gru"]}


def test_search_space_ranges_are_typed_like_their_field():
    config = load_config("sentiment", [*TUNING_ON, "tuning.search_space.model.units={min: 8, max: 64, step: 8}"])
    assert config.tuning.search_space["model.units"] == {"min": 8, "max": 64, "sampling": "linear", "step": 8}


@pytest.mark.parametrize("override, message", [
    ("tuning.search_space.model.celll=[gru]",
     "tuning.search_space.model.celll: unknown field (did you mean 'model.cell'?)"),
    ("tuning.search_space.data.path=[a]", "tuning.search_space.data.path: only model and training fields"),
    ("tuning.search_space.model.cell=[gru, lsmt]",
     "tuning.search_space.model.cell[1]: 'lsmt' is not one of: lstm, gru, simple_rnn, mingru"),
    ("tuning.search_space.model.cell=[]", "tuning.search_space.model.cell: empty list of choices"),
    ("tuning.search_space.model.cell=[gru, gru]", "duplicate choices"),
    ("tuning.search_space.model.cell={min: 1, max: 2}", "model.cell: a range needs a numeric field"),
    ("tuning.search_space.model.units={min: 64, max: 8}", "model.units: min 64 must be below max 8"),
    ("tuning.search_space.model.units={max: 8}", "tuning.search_space.model.units.min: required"),
    ("tuning.search_space.model.units={min: 0, max: 8}", "model.units.min: 0 is out of range; must be >= 1"),
    ("tuning.search_space.model.dropout={min: 0.0, max: 0.5, sampling: log}", "log sampling needs min > 0"),
    ("tuning.search_space.model.dropout={min: 0.1, max: 0.5, sampling: cubic}", "is not one of: linear, log"),
    ("tuning.search_space.model.units=32", "expected a list of choices or {min, max, step, sampling}"),
    ("tuning.algorithm=grid", "tuning.algorithm: 'grid' is not one of: random, hyperband, bayesian"),
    ("tuning.max_trials=0", "tuning.max_trials: 0 is out of range"),
])
def test_bad_search_spaces_fail_at_load(override, message):
    with pytest.raises(ConfigError) as error:
        load_config("sentiment", [*TUNING_ON, override])
    assert message in str(error.value)


def test_tuning_needs_a_search_space_and_excludes_reuse():
    with pytest.raises(ConfigError, match="tuning.search_space: empty"):
        load_config("sentiment", [*TUNING_ON, "tuning.search_space={}"])
    with pytest.raises(ConfigError, match="either tuning.enabled or tuning.reuse_from"):
        load_config("sentiment", [*TUNING_ON, "tuning.search_space.model.cell=[gru]", "tuning.reuse_from=/x"])


@pytest.mark.parametrize("overrides, message", [
    (["runner.beam.runner=dataflow"], "runner.beam.project: required for the Dataflow runner"),
    (["runner.beam.runner=dataflow", "runner.beam.project=p", "runner.beam.region=r",
      "runner.beam.temp_location=/tmp/x"], "runner.beam.temp_location: '/tmp/x' must be a gs:// URI"),
    (["runner.beam.runner=dataflow", "runner.beam.project=p", "runner.beam.region=r",
      "runner.beam.temp_location=gs://b/t"], "runner.beam: set sdk_container_image or setup_file"),
    (["runner.kfp_host=localhost:8080"], "runner.kfp_host: 'localhost:8080' is not an http(s):// URL"),
    (["runner.type=airflow"], "runner.type: 'airflow' is not one of: local, kubeflow_v2, vertex"),
    (["runner.beam.direct_workers=-1"], "runner.beam.direct_workers: -1 is out of range"),
])
def test_runner_settings_are_validated_naming_the_field(overrides, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config("sentiment", overrides)


def test_model_sizes_that_cannot_train_on_one_machine_are_refused_naming_the_field():
    with pytest.raises(ConfigError, match=r"model.units: 1000000000000 is out of range; must be <= 4096"):
        load_config("sentiment", ["model.units=1000000000000"])
    with pytest.raises(ConfigError, match=r"model.units: 4096 with model.layers=8, .* about 2,954M weights; the most "
                                          r"that trains on one machine is 500M"):
        load_config("sentiment", ["model.units=4096", "model.layers=8"])
    assert load_config("sentiment", ["model.units=1024", "model.layers=2"]).model.units == 1024


@pytest.mark.parametrize("config, override, field, task", [
    ("forecast", "model.embedding_dim=16", "model.embedding_dim", "forecasting"),
    ("ner", "model.pooling=mean", "model.pooling", "sequence_labeling"),
    ("charlm", "model.layer_norm=true", "model.layer_norm", "language_model"),
    ("charlm", "model.input_dropout=0.1", "model.input_dropout", "language_model"),
    ("forecast", "serving.missing_text=empty", "serving.missing_text", "forecasting"),
])
def test_a_field_the_task_ignores_is_an_error_naming_the_field_and_the_task(config, override, field, task):
    with pytest.raises(ConfigError, match=rf"^{re.escape(field)}: .* does nothing for the {task} task"):
        load_config(config, [override])
    # Set to its default it is harmless, and every task honours what its own built-in config sets.
    load_config(config, [f"{field}={load_config(config).to_dict()[field.split('.')[0]][field.split('.')[1]]}"])


def test_capabilities_cover_tuning_objectives_and_searched_fields():
    assert load_config("sentiment", ["tuning.objective=val_accuracy"]).tuning.objective == "val_accuracy"
    with pytest.raises(ConfigError, match="tuning.objective: the language_model task tunes on val_loss, not "
                                          "val_accuracy"):
        load_config("charlm", ["tuning.objective=val_accuracy"])
    with pytest.raises(ConfigError, match="tuning.search_space.model.pooling: the sequence_labeling task does not "
                                          "use model.pooling"):
        load_config("ner", ["tuning.enabled=true", "tuning.search_space.model.pooling=[last, mean]"])


def test_the_summary_describes_only_the_model_fields_the_task_uses():
    import keras

    from rnnflow.components.tasks import get_task
    from rnnflow.models.recurrent import describe_model

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    config = load_config("forecast").model
    described = describe_model(model, config, get_task("forecasting").honours)
    assert "embedding_dim" not in described and described["units"] == config.units
    assert "embedding_dim" in describe_model(model, config, get_task("text_classification").honours)
