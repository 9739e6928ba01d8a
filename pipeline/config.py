"""Typed pipeline configuration: one YAML file describes one pipeline.

The YAML is parsed into frozen dataclasses. Every field is type-checked and
range-checked at load time, so a typo or a bad value fails before any TFX
component starts, with an error naming the field, the bad value and what is
allowed. Unknown keys are errors: a misspelt key silently falling back to a
default is the most expensive kind of config bug.

The `task`, `data` and `evaluation` sections depend on the task (text columns for
classification, a time column for forecasting, ...); each task declares its own
dataclasses for them, and defaults for fields of shared sections (`Task.section_defaults`);
the task types are `rnnflow.pipeline.task_registry`.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import importlib
import os
import re
import types
import typing
from pathlib import Path
from importlib import resources
from typing import Any, Literal, Optional

import yaml

from rnnflow.pipeline.task_registry import get_task, task_names

BUILTIN_CONFIG_PACKAGE = "rnnflow.pipeline.configs"
PACKAGE_PATH_PREFIX = "pkg://"
# The config sections that decide examples and their transformation (cache keys of
# ExampleGen and Transform): model and training changes reuse both.
DATA_SECTIONS = ("name", "task", "data")


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""


# A field that may be `auto` is resolved from the data at run time (the training rows for
# `training.*`; the task's own fields by the task, in Transform). Resolved values are printed
# and recorded in the run summary (`resolved`).
AUTO = "auto"
Auto = Literal["auto"]


def constraint(default: Any, *, min: float | None = None, max: float | None = None,
               min_exclusive: bool = False, auto: bool | None = None):
    """A dataclass field with a numeric range checked at load time; `auto` is accepted when the
    default is auto, or when `auto` says so (a field off by default that may be resolved)."""
    return dataclasses.field(default=default, metadata={"min": min, "max": max, "min_exclusive": min_exclusive,
                                                        "auto": default == AUTO if auto is None else auto})


# ---------------------------------------------------------------------------
# Sections shared by every task.
# ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, kw_only=True)
class DataFields:
    """The fields every task's `data` section has (its own config subclasses this)."""
    # A file or glob, local or any URI tf.io.gfile reads; a {SPAN} or date spec reads spans.
    path: str
    # Predefined splits (a dataset's own dev and test files), named like `path` (with a span
    # spec exactly when `path` has one). `eval_path`: the eval split is that file and `path`
    # is all train; absent: the task splits `path` as before. `test_path`: a test split the
    # candidate model is scored on once, at the end (`test_metrics`); it never picks an epoch,
    # a trial or a blessing.
    eval_path: Optional[str] = None
    test_path: Optional[str] = None
    # With a {SPAN} or date spec in `path`: train on the latest this many spans (each run
    # ingests and validates the newest one).
    rolling_spans: int = constraint(1, min=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CsvFields(DataFields):
    """How every task that reads CSV reads it (`rnnflow.components.ingest.csv_input`), shared by their
    `data` sections: the file's text encoding (ASCII-compatible: utf-8, latin-1, cp1252, ...),
    the field delimiter and the quote character (one character each)."""
    encoding: str = "utf-8"
    delimiter: str = ","
    quote_char: str = '"'


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Recurrent encoder and head; see `rnnflow.models.recurrent`."""
    cell: Literal["lstm", "gru", "simple_rnn", "mingru"] = "lstm"
    bidirectional: bool = True
    layers: int = constraint(1, min=1, max=8)
    # Upper bounds: what one machine can train (see MAX_RECURRENT_PARAMETERS for the whole stack).
    units: int = constraint(64, min=1, max=4096)
    embedding_dim: int = constraint(64, min=1, max=4096)
    # Readout over time steps for many-to-one tasks; all of them ignore padding.
    pooling: Literal["last", "mean", "max", "attention"] = "last"
    # Residual connections between stacked recurrent layers of equal width.
    residual: bool = False
    layer_norm: bool = False
    input_dropout: float = constraint(0.0, min=0.0, max=1.0)
    # Between recurrent layers and before the head (never recurrent dropout: it disables cuDNN).
    dropout: float = constraint(0.2, min=0.0, max=1.0)
    # Word dropout (classifiers and taggers): in training only, each word id becomes the
    # out-of-vocabulary id with this probability, so the model learns to do without a word it
    # does not know (a tagger then reads it from its characters and its context).
    word_dropout: float = constraint(0.0, min=0.0, max=0.9)
    # Pretrained word vectors (classifiers and taggers; rnnflow.components.training.pretrained):
    # a word2vec/GloVe/fastText text file (optionally .gz) or a .npy matrix with a .vocab file
    # beside it, aligned to the vocabulary; `freeze_embeddings` keeps them as they are.
    pretrained_embeddings: Optional[str] = None
    freeze_embeddings: bool = False


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    # auto: enough epochs for about 4,000 optimizer steps, 3 to 40 (`resolve_training`).
    epochs: int | Auto = constraint(AUTO, min=1)
    # auto: from the number of training examples (`resolve_training`).
    batch_size: int | Auto = constraint(AUTO, min=1)
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = "adam"
    # auto: grows with the square root of the batch size (`resolve_training`).
    learning_rate: float | Auto = constraint(AUTO, min=0.0, min_exclusive=True)
    # auto: cosine decay when the run has many steps, else constant (`resolve_training`).
    lr_schedule: Literal["constant", "cosine", "exponential", "auto"] = dataclasses.field(
        default=AUTO, metadata={"auto": True})
    # Clip gradients by global norm (the standard cure for exploding BPTT gradients); 0 disables.
    clipnorm: float = constraint(1.0, min=0.0)
    # float16 compute on GPU (ignored on CPU, where it is slower).
    mixed_precision: bool = False
    # Weight averaging: evaluate, keep and export an exponential moving average of the weights
    # (Keras' optimizer EMA, this momentum per step); 0 disables. auto: averages about the last
    # two epochs' steps (`resolve_training`).
    ema_momentum: float | Auto = constraint(0.0, min=0.0, max=0.9999, auto=True)
    # Epochs without a better val_loss before training stops (the best epoch's weights kept).
    # auto: about 600 steps' worth of epochs, 1 to 5 (`resolve_training`).
    early_stopping_patience: int | Auto = constraint(AUTO, min=0)
    seed: int = 42
    # A training time budget: training stops after the step that crosses it, that epoch is
    # still evaluated, and the best epoch's weights are kept. null: no budget.
    max_minutes: Optional[float] = constraint(60.0, min=0.0, min_exclusive=True)
    # XLA: auto (Keras decides: on GPU when every layer supports it), on, off.
    jit_compile: Literal["auto", "on", "off"] = "auto"
    # A progress line at least this often during an epoch (and one at each epoch end).
    progress_seconds: float = constraint(30.0, min=1.0)
    # Start from the latest blessed model's weights: prefer (when the model, task settings and
    # vocabulary match; else say why and train from scratch), require (else fail), none.
    warm_start: Literal["none", "prefer", "require"] = "none"


# training.* auto rules (`resolve_training`), in one place.
AUTO_BATCH_SIZES = (16, 128)  # smallest, largest
AUTO_STEPS_PER_EPOCH = 150  # the batch grows (by powers of 2) while an epoch keeps this many steps
AUTO_BASE_LEARNING_RATE = 3e-3  # at the smallest batch; times sqrt(batch / smallest batch)
AUTO_COSINE_MIN_STEPS = 1000  # cosine decay when epochs x steps per epoch reach this
AUTO_TRAINING_STEPS = 4000  # epochs: about this many optimizer steps in all ...
AUTO_EPOCHS = (3, 40)  # ... within these bounds
AUTO_PATIENCE_STEPS = 600  # patience: about this many steps without improvement ...
AUTO_PATIENCE = (1, 5)  # ... in epochs, within these bounds
AUTO_EMA_EPOCHS = 2  # weight averaging: 1 - 1 / (this many epochs' steps) ...
AUTO_EMA_MAX_MOMENTUM = 0.999  # ... at most this


def resolve_training(training: TrainingConfig, train_examples: int) -> tuple[TrainingConfig, dict]:
    """`training` with its `auto` fields resolved for `train_examples` training examples, and
    the resolved values by dotted field (empty when nothing was auto).

    - batch_size: the largest power of 2 in [16, 128] that keeps at least 150 steps per epoch
      (16 for small data: 100 reviews train with the batch they were tuned for);
    - learning_rate: 0.003 x sqrt(batch_size / 16) (Adam: the noise scale of larger batches
      allows larger steps);
    - epochs: about 4,000 optimizer steps, at least 3 and at most 40 epochs (a few thousand
      sentences get enough steps to fit, 25,000 reviews few passes over them);
    - early_stopping_patience: about 600 steps without a better val_loss, 1 to 5 epochs (large
      data does not spend a third of the run waiting);
    - lr_schedule: cosine decay over the run when it has at least 1000 steps, else constant;
    - ema_momentum: 1 - 1 / (2 x steps per epoch) (the average spans about the last two epochs),
      at most 0.999.
    """
    smallest, largest = AUTO_BATCH_SIZES
    resolved: dict[str, Any] = {}
    batch_size = training.batch_size
    if batch_size == AUTO:
        batch_size = smallest
        while batch_size * 2 <= largest and train_examples / (batch_size * 2) >= AUTO_STEPS_PER_EPOCH:
            batch_size *= 2
        resolved["training.batch_size"] = batch_size
    if training.learning_rate == AUTO:
        resolved["training.learning_rate"] = round(AUTO_BASE_LEARNING_RATE * (batch_size / smallest) ** 0.5, 6)
    steps_per_epoch = max(1, -(-train_examples // batch_size))
    epochs = training.epochs
    if epochs == AUTO:
        epochs = min(max(-(-AUTO_TRAINING_STEPS // steps_per_epoch), AUTO_EPOCHS[0]), AUTO_EPOCHS[1])
        resolved["training.epochs"] = epochs
    if training.early_stopping_patience == AUTO:
        resolved["training.early_stopping_patience"] = min(
            max(round(AUTO_PATIENCE_STEPS / steps_per_epoch), AUTO_PATIENCE[0]), AUTO_PATIENCE[1])
    if training.lr_schedule == AUTO:
        steps = epochs * steps_per_epoch
        resolved["training.lr_schedule"] = "cosine" if steps >= AUTO_COSINE_MIN_STEPS else "constant"
    if training.ema_momentum == AUTO:
        resolved["training.ema_momentum"] = round(
            min(1 - 1 / (AUTO_EMA_EPOCHS * steps_per_epoch), AUTO_EMA_MAX_MOMENTUM), 4)
    return dataclasses.replace(training, **{k.partition(".")[2]: v for k, v in resolved.items()}), resolved


def unresolved(config: "PipelineConfig") -> list[str]:
    """Dotted fields still `auto` that the data resolves (models are built only from resolved
    configs); `training.jit_compile: auto` is Keras' own choice, not one of them."""
    return [f"{section}.{f.name}" for section in ("task", "training")
            for f in dataclasses.fields(getattr(config, section))
            if f.metadata.get("auto") and getattr(getattr(config, section), f.name) == AUTO]


TUNABLE_SECTIONS = ("model", "training")
# Fields of those sections a trial could not honour, and why. Every other field changes what a
# trial does: model.* and the optimizer fields through the model each trial builds;
# training.batch_size (the trial's datasets), epochs (how long it trains), early_stopping_patience
# (its early stopping) and seed (its initial weights and shuffling) in components/training/tuning.py.
UNTUNABLE_FIELDS = {
    "training.max_minutes": "the budget is the whole Trainer's, not a trial's",
    "training.progress_seconds": "it changes what is printed, not what is trained",
    "training.warm_start": "trials start from scratch; the Trainer warm-starts the tuned model",
}
RANGE_KEYS = {"min", "max", "step", "sampling"}


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """keras-tuner search run by the TFX Tuner component before the Trainer."""
    enabled: bool = False
    algorithm: Literal["random", "hyperband", "bayesian"] = "random"
    objective: Literal["val_loss", "val_accuracy"] = "val_loss"
    max_trials: int = constraint(4, min=1)
    epochs_per_trial: int = constraint(2, min=1)
    # Dotted model/training field -> list of choices, or {min, max, step, sampling: linear|log}.
    search_space: Any = dataclasses.field(default_factory=dict)
    # Reuse the best hyperparameters of an earlier run (its --output-dir, or a
    # best_hyperparameters.txt) instead of searching again.
    reuse_from: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Blessing rules. Both thresholds are always set, so a blessing is always decided."""
    metric: Literal["accuracy", "auc", "precision", "recall"] = "accuracy"
    # The candidate is blessed only if `metric` on the eval split is at least this.
    lower_bound: float = constraint(0.5, min=0.0, max=1.0)
    # ... and it is not worse than the last blessed model by more than this.
    max_regression: float = constraint(0.02, min=0.0, max=1.0)
    # ... and its accuracy beats always answering the most frequent class by this much (its AUC
    # beats 0.5 by this much), whatever lower_bound says: a first model has nothing else to beat.
    # Negative: a model may be that much worse (smoke tests of the plumbing; -1 turns it off).
    baseline_margin: float = constraint(0.01, min=-1.0, max=1.0)
    # Optional raw feature to slice the metrics by (in addition to overall).
    slice_feature: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class DriftConfig:
    """This run's train statistics against the last run whose data passed the gates."""
    # fail: stop before Transform with a per-feature report; warn: record it in the summary;
    # none: no drift gate.
    action: Literal["none", "warn", "fail"] = "warn"
    # L-infinity distance between value frequencies of string features (labels, categories).
    categorical_threshold: float = constraint(0.2, min=0.0, max=1.0)
    # Jensen-Shannon divergence between value histograms of numeric features.
    numeric_threshold: float = constraint(0.2, min=0.0, max=1.0)


SCHEMA_MODES = ("infer", "previous")


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """The data gates before Transform (ExampleValidator's anomalies, drift)."""
    # infer: SchemaGen infers this run's schema; previous: the schema of the last run
    # (inferred on the first), so scheduled runs are validated against one schema; any other
    # value: a curated schema.pbtxt (path or URI; `rnnflow schema` writes one to start from).
    schema: str = "infer"
    drift: DriftConfig = dataclasses.field(default_factory=DriftConfig)


@dataclasses.dataclass(frozen=True)
class ServingConfig:
    """Where the Pusher writes numbered SavedModel versions for TF Serving."""
    # Relative paths are resolved against the run's --output-dir.
    base_dir: str = "serving"
    model_name: Optional[str] = None  # defaults to the pipeline name
    # Tasks with a text input: a serving_examples tf.Example without the text feature is an
    # error, or (empty) read as an empty text.
    missing_text: Literal["error", "empty"] = "error"
    # Keep only the newest N versions in the serving directory after each push; null: keep all.
    keep_versions: Optional[int] = constraint(None, min=1)
    # The TF Serving release the model will be served by: serving validation checks the graph's
    # ops against it (2.0, 2.1, 2.12 to 2.19, 2.20 and later).
    tf_serving_version: str = "2.16"
    # Eval examples serving validation scores through both signatures (and times).
    validation_examples: int = constraint(64, min=1)


@dataclasses.dataclass(frozen=True)
class InferenceConfig:
    """Batch scoring in every run: the blessed, servable model scores this file with TFX's
    BulkInferrer and the predictions (PredictionLogs) become the run's `inference_result`.
    The file is what `rnnflow predict` reads: CSV, JSONL or Parquet rows with a column per
    serving_default input (and optionally an id column)."""
    path: Optional[str] = None  # null: no batch scoring
    format: Optional[Literal["csv", "jsonl", "parquet"]] = None  # null: from the extension
    id_column: Optional[str] = None  # null: `id` when the file has one, else the line number
    delimiter: str = ","


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """Beam for TFX's data components (ExampleGen, StatisticsGen, Transform, Evaluator)."""
    runner: Literal["direct", "dataflow"] = "direct"
    # DirectRunner: in_memory (one process: fastest for data that fits one machine) or
    # multi_processing (`direct_workers` processes; 0 means one per CPU core).
    direct_mode: Literal["in_memory", "multi_processing"] = "in_memory"
    direct_workers: int = constraint(1, min=0)
    # DataflowRunner (project, region and a gs:// temp_location are required).
    project: Optional[str] = None
    region: Optional[str] = None
    temp_location: Optional[str] = None
    # How Dataflow workers get rnnflow: an SDK container image with it installed, or a
    # setup.py Beam builds and ships (/rnnflow/setup.py in the pipeline image).
    sdk_container_image: Optional[str] = None
    setup_file: Optional[str] = None
    max_workers: Optional[int] = constraint(None, min=1)


@dataclasses.dataclass(frozen=True)
class RunnerConfig:
    """Where `rnnflow run` runs the pipeline: here, on Kubeflow Pipelines or on Vertex AI."""
    type: Literal["local", "kubeflow_v2", "vertex"] = "local"
    beam: BeamConfig = dataclasses.field(default_factory=BeamConfig)
    # Extra raw Beam flags, appended last (they win over `beam`).
    beam_args: tuple[str, ...] = ()
    enable_cache: bool = True
    # kubeflow_v2 / vertex: the pipeline image (`make image`) and the pipeline root, a URI
    # every step can write (--pipeline-root overrides it).
    image: Optional[str] = None
    pipeline_root: Optional[str] = None
    # kubeflow_v2: the KFP API endpoint (e.g. http://localhost:8080 through a port-forward).
    kfp_host: Optional[str] = None
    kfp_experiment: str = "rnnflow"
    # vertex
    vertex_project: Optional[str] = None
    vertex_region: Optional[str] = None
    # Default: the region's endpoint; set for a private endpoint.
    vertex_api_endpoint: Optional[str] = None
    # kubeflow_v2 / vertex: the service account runs execute as.
    service_account: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """The whole pipeline. `task` and `data` are task-specific dataclasses."""
    name: str
    task: Any
    data: Any
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    # Task-specific like task/data; EvaluationConfig is the classification default.
    evaluation: Any = dataclasses.field(default_factory=EvaluationConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)
    serving: ServingConfig = dataclasses.field(default_factory=ServingConfig)
    inference: InferenceConfig = dataclasses.field(default_factory=InferenceConfig)
    tuning: TuningConfig = dataclasses.field(default_factory=TuningConfig)
    runner: RunnerConfig = dataclasses.field(default_factory=RunnerConfig)

    @property
    def task_type(self) -> str:
        return self.task.type

    def to_dict(self) -> dict:
        return to_plain(self)


# ---------------------------------------------------------------------------
# Loading.
# ---------------------------------------------------------------------------

def builtin_config_names() -> list[str]:
    files = resources.files(BUILTIN_CONFIG_PACKAGE).iterdir()
    return sorted(f.name[:-len(".yaml")] for f in files if f.name.endswith(".yaml"))


def read_raw_config(name_or_path: str) -> dict:
    """Reads a built-in config by name, or any YAML file by path."""
    if os.path.isdir(name_or_path):
        raise ConfigError(f"--config {name_or_path}: is a directory; give a YAML file or a built-in config "
                          f"({', '.join(builtin_config_names())})")
    if os.path.exists(name_or_path):
        try:
            with open(name_or_path, "rb") as f:
                text = f.read().decode("utf-8-sig")
        except OSError as e:
            raise ConfigError(f"--config {name_or_path}: cannot read it: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"--config {name_or_path}: not UTF-8 text (byte offset {e.start})") from None
        source = name_or_path
    elif name_or_path in builtin_config_names():
        text = resources.files(BUILTIN_CONFIG_PACKAGE).joinpath(f"{name_or_path}.yaml").read_text()
        source = f"built-in config '{name_or_path}'"
    else:
        raise ConfigError(
            f"config '{name_or_path}' is neither a file nor a built-in config; "
            f"built-in configs: {', '.join(builtin_config_names())}")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Applies `dotted.key=value` overrides; values are parsed as YAML (`[a, b]`, `3`, `true`)."""
    raw = _deep_copy(raw)
    for item in overrides:
        key, sep, value_text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set '{item}': expected dotted.key=value")
        try:
            value = yaml.safe_load(value_text) if value_text.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: value '{value_text}' is not valid YAML: {e}") from e
        node = raw
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {key}: '{'.'.join(parts[:depth + 1])}' is a value, not a section")
            node = child
        node[parts[-1]] = value
    return raw


def load_config(name_or_path: str, overrides: list[str] | None = None) -> PipelineConfig:
    """Reads, overrides and validates a pipeline config."""
    raw = apply_overrides(read_raw_config(name_or_path), overrides or [])
    return parse_config(raw)


def parse_config(raw: dict) -> PipelineConfig:
    task_section = raw.get("task")
    if not isinstance(task_section, dict) or "type" not in task_section:
        raise ConfigError(f"task.type: required; allowed: {', '.join(task_names())}")
    task_type = task_section["type"]
    if task_type not in task_names():
        raise ConfigError(f"task.type: '{task_type}' is not one of: {', '.join(task_names())}")
    task = get_task(task_type)
    field_types = {"task": task.task_config_cls, "data": task.data_config_cls,
                   "evaluation": task.evaluation_config_cls}
    for section, defaults in task.section_defaults.items():  # the task's defaults for shared sections
        if isinstance(raw.get(section, {}), dict):
            raw = {**raw, section: {**defaults, **raw.get(section, {})}}
    config = from_dict(PipelineConfig, raw, path="", field_types=field_types)
    search_space = validate_search_space(config.tuning.search_space)
    if config.tuning.enabled and not search_space:
        raise ConfigError("tuning.search_space: empty; tuning needs at least one field to search")
    if config.tuning.enabled and config.tuning.reuse_from:
        raise ConfigError("tuning.reuse_from: set either tuning.enabled or tuning.reuse_from, not both")
    if config.tuning.algorithm == "hyperband" and "training.epochs" in search_space:
        raise ConfigError("tuning.search_space.training.epochs: hyperband decides each trial's epochs itself "
                          "(up to tuning.epochs_per_trial); search epochs with random or bayesian")
    config = dataclasses.replace(config, tuning=dataclasses.replace(config.tuning, search_space=search_space))
    _validate_model_size(config.model)
    _validate_embeddings(config.model)
    _validate_runner(config.runner)
    _validate_serving(config.serving)
    _validate_inference(config.inference)
    task.check_config(config)
    return config


# A recurrent stack with more weights than this does not train on one machine in any useful time
# (an LSTM's weights, gradients and Adam's two moments: 16 bytes each, 8 GB here).
MAX_RECURRENT_PARAMETERS = 500_000_000
_GATES = {"lstm": 4, "gru": 3, "simple_rnn": 1, "mingru": 2}


def recurrent_parameters(model: "ModelConfig") -> int:
    """An estimate of the recurrent stack's weights (embedding and head aside)."""
    directions = 2 if model.bidirectional else 1
    total, width = 0, model.embedding_dim
    for _ in range(model.layers):
        total += directions * _GATES[model.cell] * model.units * (width + model.units + 1)
        width = directions * model.units
    return total


def _validate_model_size(model: "ModelConfig") -> None:
    parameters = recurrent_parameters(model)
    if parameters > MAX_RECURRENT_PARAMETERS:
        raise ConfigError(
            f"model.units: {model.units} with model.layers={model.layers}, model.embedding_dim={model.embedding_dim} "
            f"and model.cell={model.cell} makes a recurrent stack of about {parameters / 1e6:,.0f}M weights; the "
            f"most that trains on one machine is {MAX_RECURRENT_PARAMETERS / 1e6:,.0f}M: use fewer units or layers")


# TF Serving releases whose bundled TF Text ops rnnflow knows (components/serving/serving_validation.py).
SUPPORTED_TF_SERVING = "2.0, 2.1, 2.12 to 2.19, 2.20 and later"


def tf_serving_release(version: str) -> tuple[int, int]:
    """"2.16" -> (2, 16); a ValueError naming what is supported otherwise."""
    parts = version.split(".")
    try:
        major, minor = int(parts[0]), int(parts[1])
    except (ValueError, IndexError):
        raise ValueError(f"'{version}' is not a TF Serving release such as 2.16") from None
    if not ((major, minor) in ((2, 0), (2, 1)) or (major, minor) >= (2, 12)):
        raise ValueError(f"{version}: rnnflow knows the TF Text ops of TF Serving {SUPPORTED_TF_SERVING}")
    return major, minor


def _validate_serving(serving: ServingConfig) -> None:
    try:
        tf_serving_release(serving.tf_serving_version)
    except ValueError as e:
        raise ConfigError(f"serving.tf_serving_version: {e}") from None


def _validate_inference(inference: InferenceConfig) -> None:
    if inference.path is None:
        return
    extension = os.path.splitext(inference.path)[1].lower()
    if inference.format is None and extension not in (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".json",
                                                      ".parquet", ".pq"):
        raise ConfigError(f"inference.format: '{inference.path}' has no .csv, .jsonl or .parquet extension; "
                          "set inference.format")
    if len(inference.delimiter) != 1:
        raise ConfigError(f"inference.delimiter: {inference.delimiter!r} must be one character")


def _validate_embeddings(model: ModelConfig) -> None:
    if model.freeze_embeddings and not model.pretrained_embeddings:
        raise ConfigError("model.freeze_embeddings: true freezes random embeddings; set model.pretrained_embeddings "
                          "to a vectors file, or leave freeze_embeddings false")
    path = model.pretrained_embeddings
    if path and not is_uri(path) and not os.path.isfile(resolve_path(path)):
        raise ConfigError(f"model.pretrained_embeddings: file not found: {resolve_path(path)}")


def _validate_runner(runner: RunnerConfig) -> None:
    beam = runner.beam
    if beam.runner == "dataflow":
        for field in ("project", "region", "temp_location"):
            if not getattr(beam, field):
                raise ConfigError(f"runner.beam.{field}: required for the Dataflow runner")
        if not beam.temp_location.startswith("gs://"):
            raise ConfigError(f"runner.beam.temp_location: '{beam.temp_location}' must be a gs:// URI")
        if not (beam.sdk_container_image or beam.setup_file):
            raise ConfigError("runner.beam: set sdk_container_image or setup_file, so Dataflow workers "
                              "have rnnflow installed")
    if runner.kfp_host is not None and not re.match(r"^https?://[^/\s]+", runner.kfp_host):
        raise ConfigError(f"runner.kfp_host: '{runner.kfp_host}' is not an http(s):// URL such as "
                          "http://localhost:8080")


def require_fields(config: PipelineConfig, *fields: str) -> None:
    """ConfigErrors for dotted fields a command needs that the config leaves unset."""
    for field in fields:
        value: Any = config
        for part in field.split("."):
            value = getattr(value, part)
        if value in (None, ""):
            raise ConfigError(f"{field}: required for runner.type: {config.runner.type}")


def replace_fields(config: PipelineConfig, values: dict[str, Any]) -> PipelineConfig:
    """A copy of `config` with dotted fields replaced (e.g. tuned hyperparameters), re-validated."""
    raw = config.to_dict()
    for key, value in values.items():
        node = raw
        *sections, name = key.split(".")
        for section in sections:
            node = node[section]
        node[name] = value
    return parse_config(raw)


def validate_search_space(raw: Any, path: str = "tuning.search_space") -> dict:
    """Flattens and checks the search space: {"model.units": {"min": 16, ...}, "model.cell": [...]}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of model/training fields, got {_show(raw)}")
    flat: dict = {}
    for key, spec in raw.items():
        if isinstance(spec, dict) and not set(spec) <= RANGE_KEYS:
            for sub_key, value in validate_search_space(spec, f"{path}.{key}").items():
                flat[f"{key}.{sub_key}"] = value
        else:
            flat[key] = spec
    if path != "tuning.search_space":
        return flat
    return {field: _validate_dimension(field, spec, f"{path}.{field}") for field, spec in flat.items()}


def _validate_dimension(field: str, spec: Any, path: str):
    section, _, name = field.partition(".")
    if section not in TUNABLE_SECTIONS:
        raise ConfigError(f"{path}: only {' and '.join(TUNABLE_SECTIONS)} fields can be tuned")
    cls = {"model": ModelConfig, "training": TrainingConfig}[section]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if name not in fields:
        close = difflib.get_close_matches(name, list(fields), n=1)
        hint = f" (did you mean '{section}.{close[0]}'?)" if close else ""
        raise ConfigError(f"{path}: unknown field{hint}; known fields: {', '.join(fields)}")
    if field in UNTUNABLE_FIELDS:
        raise ConfigError(f"{path}: {field} cannot be tuned: {UNTUNABLE_FIELDS[field]}")
    hint_type, metadata = typing.get_type_hints(cls)[name], fields[name].metadata
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ConfigError(f"{path}: empty list of choices")
        values = []
        for i, value in enumerate(spec):
            values.append(_coerce(value, hint_type, f"{path}[{i}]"))
            _check_range(values[-1], metadata, f"{path}[{i}]")
        if len(set(values)) != len(values):
            raise ConfigError(f"{path}: duplicate choices {list(spec)}")
        return values
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a list of choices or {{min, max, step, sampling}}, got {_show(spec)}")
    numeric = [t for t in (typing.get_args(hint_type) or (hint_type,)) if t in (int, float)]
    if not numeric:
        raise ConfigError(f"{path}: a range needs a numeric field; give a list of choices instead")
    hint_type = numeric[0]
    for bound in ("min", "max"):
        if bound not in spec:
            raise ConfigError(f"{path}.{bound}: required for a range")
        spec[bound] = _coerce(spec[bound], hint_type, f"{path}.{bound}")
        _check_range(spec[bound], metadata, f"{path}.{bound}")
    if spec["min"] >= spec["max"]:
        raise ConfigError(f"{path}: min {spec['min']} must be below max {spec['max']}")
    sampling = spec.get("sampling", "linear")
    if sampling not in ("linear", "log"):
        raise ConfigError(f"{path}.sampling: {_show(sampling)} is not one of: linear, log")
    if sampling == "log" and spec["min"] <= 0:
        raise ConfigError(f"{path}: log sampling needs min > 0, got {spec['min']}")
    result = {"min": spec["min"], "max": spec["max"], "sampling": sampling}
    if "step" in spec:
        result["step"] = _coerce(spec["step"], hint_type, f"{path}.step")
        if result["step"] <= 0:
            raise ConfigError(f"{path}.step: {result['step']} is out of range; must be > 0")
    return result


def from_dict(cls, raw: Any, path: str, field_types: dict | None = None):
    """Builds dataclass `cls` from `raw`, checking every key, type and range."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {_show(raw)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{_join(path, key)}: unknown field{hint}; known fields: {', '.join(fields)}")
    values = {}
    for name, f in fields.items():
        field_path = _join(path, name)
        hint_type = (field_types or {}).get(name, hints[name])
        if name in raw:
            values[name] = _coerce(raw[name], hint_type, field_path)
            _check_range(values[name], f.metadata, field_path)
        elif name in (field_types or {}) or (
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING):
            if dataclasses.is_dataclass(hint_type):
                values[name] = _coerce({}, hint_type, field_path)
            else:
                raise ConfigError(f"{field_path}: required field is missing")
    return cls(**values)


def _coerce(value: Any, tp: Any, path: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for option in non_none:
            try:
                return _coerce(value, option, path)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) == 1:
            raise ConfigError(errors[0])
        raise ConfigError(f"{path}: expected {' or '.join(_describe(a) for a in non_none)}, got {_show(value)}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {_show(value)} is not one of: {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {_show(value)}")
        item_type = args[0] if args else Any
        return tuple(_coerce(v, item_type, f"{path}[{i}]") for i, v in enumerate(value))
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {_show(value)}")
        if value != value:  # NaN
            raise ConfigError(f"{path}: expected a number, got NaN")
        return float(value)
    if tp is str:
        if isinstance(value, (datetime.date, datetime.datetime)):  # YAML reads 2017-07-01 as a date
            value = value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # YAML reads 2.10 as the number 2.1: a version or id must be written in quotes.
            raise ConfigError(f"{path}: expected a string, got the number {value!r}: write it in quotes "
                              f"(e.g. '{value}')")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{path}: expected a non-empty string, got {_show(value)}")
        return value
    raise TypeError(f"{path}: unsupported config type {tp}")


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " or ".join(map(str, typing.get_args(tp)))
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, str(tp))


def _check_range(value: Any, metadata, path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    low, high = metadata.get("min"), metadata.get("max")
    if low is not None:
        if metadata.get("min_exclusive") and value <= low:
            raise ConfigError(f"{path}: {value} is out of range; must be > {low}")
        if not metadata.get("min_exclusive") and value < low:
            raise ConfigError(f"{path}: {value} is out of range; must be >= {low}")
    if high is not None and value > high:
        raise ConfigError(f"{path}: {value} is out of range; must be <= {high}")


def to_plain(obj: Any) -> Any:
    """Dataclasses -> JSON-friendly dicts and lists (for custom_config and run summaries)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def is_uri(path: str) -> bool:
    """`gs://...`, `s3://...`, `pkg://...`: a location that means the same on every machine."""
    return "://" in path


def resolve_path(path: str) -> str:
    """Resolves `pkg://package/relative/file` to a file inside an installed package on this
    machine, a relative path against the working directory; other URIs are kept."""
    if path.startswith(PACKAGE_PATH_PREFIX):
        package, _, relative = path[len(PACKAGE_PATH_PREFIX):].partition("/")
        return str(resources.files(package).joinpath(relative))
    if is_uri(path):
        return path
    return os.path.abspath(os.path.expanduser(path))


def pipeline_path(path: str) -> str:
    """A path as pipeline components see it: URIs (pkg:// included, resolved where each
    component runs) are kept, local paths made absolute."""
    return path if is_uri(path) else os.path.abspath(os.path.expanduser(path))


def portable_path(path: str, field: str) -> str:
    """A path for a pipeline that runs on other machines: a URI, or an absolute path (one
    mounted into the pipeline's containers); a relative path means the compiling machine."""
    if is_uri(path) or os.path.isabs(path):
        return path
    raise ConfigError(f"{field}: '{path}' is relative to this machine; a pipeline compiled for "
                      "Kubeflow/Vertex runs elsewhere: give a URI (gs://bucket/..., pkg://package/file) "
                      "or a path mounted into the pipeline image")


def portable_path_notes(config: "PipelineConfig") -> list[str]:
    """Checks every input path of a config for a pipeline that runs on other machines, before
    anything is compiled: a relative path is a ConfigError naming the field; an absolute local
    path is allowed (a volume mounted into the image) and gets a note saying so."""
    fields = [("data.path", config.data.path)]
    for name in ("eval_path", "test_path"):
        if getattr(config.data, name, None):
            fields.append((f"data.{name}", getattr(config.data, name)))
    if config.inference.path:
        fields.append(("inference.path", config.inference.path))
    if config.validation.schema not in SCHEMA_MODES:
        fields.append(("validation.schema", config.validation.schema))
    notes = []
    for field, value in fields:
        portable_path(value, field)
        if not is_uri(value):
            notes.append(f"{field}: '{value}' is a path on the machines the pipeline runs on: it must exist "
                         "inside the pipeline image or a volume mounted into it (not on this machine)")
    return notes


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    return repr(value) if not isinstance(value, (dict, list)) else type(value).__name__


def _deep_copy(raw: Any) -> Any:
    if isinstance(raw, dict):
        return {k: _deep_copy(v) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_deep_copy(v) for v in raw]
    return raw


def data_sections(config: PipelineConfig) -> dict:
    return {k: v for k, v in config.to_dict().items() if k in DATA_SECTIONS}


def code_version() -> str:
    """A hash of rnnflow's source, so cached Transform/Trainer runs are invalidated by code changes.

    Components are referenced by dotted path, and TFX's cache key covers the
    path but not the code behind it.
    """
    digest = hashlib.sha256()
    for package in ("pipeline", "components", "models"):
        package_dir = Path(importlib.import_module(f"rnnflow.{package}").__file__).parent
        for source in sorted(package_dir.rglob("*.py")):
            digest.update(str(source.relative_to(package_dir.parent)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]
