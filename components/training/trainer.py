"""The trainer scaffolding every task shares: its run_fn is `train_and_export` with the task's
`TaskData` subclass (its data, model builder, export and reference outputs as methods); its
tuner_fn is `components.training.tuning.tuner_result` with the same class. Also here: tuned
config, device strategy, warm starts, fitting, length bucketing, summaries."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from rnnflow.components.common import interrupts

from rnnflow.components.common import run_facts
from rnnflow.components.training.progress import PROGRESS_PREFIX, TrainingProgress
from rnnflow.components.tasks import get_task
from rnnflow.models.recurrent import cudnn_eligibility
from rnnflow.pipeline.config import (
    TUNABLE_SECTIONS, PipelineConfig, TrainingConfig, parse_config, replace_fields, resolve_path, resolve_training,
    unresolved)

# Python logging (not absl, whose level Beam resets mid-run): reaches the run log.
log = logging.getLogger(__name__)

# What early stopping watches unless a task declares its own score (`TaskData.monitor`).
VAL_LOSS = ("val_loss", "min")


class TaskData:
    """Transformed train/eval datasets, what a task's model needs to know about its data, and
    the task's side of training.

    A task subclasses it with `train_examples` (how many examples one epoch has, which sizes
    the `auto` training fields and learning-rate schedules), `dataset` (one pass over Transform's
    output as (features, target) batches), `compatibility` (what a warm start's base model
    must share), `build_model(config)` (the compiled Keras model; a tuning trial passes its own
    config), `export(model, serving_dir)` (the serving SavedModel), `reference_outputs(model,
    transformed)` (the in-memory model's outputs on a transformed batch, as serving answers, as
    tensors: `serving_reference` traces it once, so TensorFlow ops only, no `.numpy()`), and
    optionally `class_weight(config)` and `summary_fields()`. Its run_fn is
    `train_and_export(fn_args, TrainingData)`, its tuner_fn `tuner_result(fn_args, TrainingData)`."""

    def __init__(self, fn_args, config: PipelineConfig):
        import tensorflow_transform as tft

        self.tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
        self.input_report = run_facts.read_input_report(fn_args.transform_graph_path)
        self.details = self.input_report["details"]
        self.fn_args = fn_args
        self.prepare(config)
        examples = self.train_examples(config)
        self.config, self.resolved = resolve_auto(fn_args, config, examples)
        self.steps_per_epoch = max(1, -(-examples // self.config.training.batch_size))

    def prepare(self, config: PipelineConfig) -> None:
        """Task facts read before the auto fields are resolved (vocabularies, widths)."""

    def train_examples(self, config: PipelineConfig) -> int:
        """Training examples, for the `auto` training fields: by default the input rows less the
        eval share of a hash split by `data.split.eval_percent` (all of them when `data.eval_path`
        gives the eval split). Tasks that split otherwise or count windows override it."""
        if config.data.eval_path:  # the train file is all train
            return self.input_report["rows"]
        return round(self.input_report["rows"] * (100 - config.data.split.eval_percent) / 100)

    def dataset(self, files, shuffle: bool) -> tf.data.Dataset:
        raise NotImplementedError

    def compatibility(self) -> dict:
        raise NotImplementedError

    def build_model(self, config: PipelineConfig) -> keras.Model:
        raise NotImplementedError

    def export(self, model: keras.Model, serving_dir: str) -> None:
        raise NotImplementedError

    def reference_outputs(self, model: keras.Model, transformed: dict) -> dict:
        raise NotImplementedError

    # What early stopping and the best epoch watch on the eval split: Keras' val_loss, or a score
    # of the task's own (`eval_scores`, computed after each epoch) that follows its blessing
    # metric where the loss does not. (name, "min" or "max").
    monitor: tuple[str, str] = VAL_LOSS

    def eval_scores(self, model: keras.Model) -> dict[str, float]:
        """The model's scores on the eval split after an epoch, logged as val_<name> (a task whose
        `monitor` is one of them computes it here)."""
        return {}

    def class_weight(self, config: PipelineConfig) -> dict | None:
        return None

    def summary_fields(self) -> dict:
        return {}

    def pretrained(self, config: PipelineConfig, vocabulary: str, *, first_id: int, size: int):
        """The word embedding's initial rows [size, embedding_dim] from `model.pretrained_embeddings`
        aligned to the Transform vocabulary file `vocabulary` (word i has id first_id + i), or None
        without a vectors file; read once per run (tuning trials share it)."""
        from rnnflow.components.training.pretrained import aligned_vectors

        path, dim = config.model.pretrained_embeddings, config.model.embedding_dim
        if not path:
            return None
        cached = getattr(self, "_vectors", None)
        if cached is None or cached[0] != (path, dim):
            words = [w.decode("utf-8", "replace") for w in self.tf_transform_output.vocabulary_by_name(vocabulary)]
            vectors = aligned_vectors(resolve_path(path), words, first_id=first_id, size=size, dim=dim,
                                      seed=config.training.seed)
            log.info("pretrained embeddings: %s", vectors.coverage)
            print(PROGRESS_PREFIX + "pretrained embeddings: {covered} of {vocabulary} words covered "
                  "({coverage:.1%})".format(**vectors.coverage), flush=True)
            cached = self._vectors = ((path, dim), vectors)
        return cached[1].matrix

    def pretrained_coverage(self) -> dict:
        """{"pretrained_embeddings": coverage} once `pretrained` has read a file."""
        cached = getattr(self, "_vectors", None)
        return {"pretrained_embeddings": cached[1].coverage} if cached else {}

    def train(self) -> tf.data.Dataset:
        return self.dataset(self.fn_args.train_files, shuffle=True)

    def eval(self) -> tf.data.Dataset:
        return self.dataset(self.fn_args.eval_files, shuffle=False)


def train_and_export(fn_args, data_cls: type[TaskData]) -> None:
    """A task's run_fn: trains with early stopping on the eval split (warm-starting when asked),
    exports the serving SavedModel (`data.export`), and records next to it the weights, the
    Trainer's own predictions for serving validation (`data.reference_outputs`), the model's facts
    and the training summary (plus `data.summary_fields()`)."""
    from rnnflow.components.ingest.input_report import write_model_facts
    from rnnflow.models.recurrent import describe_model

    distribution_strategy()  # before any TensorFlow op (multi-worker collectives need it)
    tuned, hyperparameters = config_with_hyperparameters(fn_args)
    data = data_cls(fn_args, tuned)
    config = data.config  # auto fields resolved
    model, history, warm = fit(config, fn_args, lambda: data.build_model(config), data,
                               class_weight=data.class_weight(config))
    serving_dir, run_dir = output_dirs(fn_args)
    data.export(model, serving_dir)
    save_weights(model, serving_dir)
    serving_reference(model, data.tf_transform_output, fn_args.transform_graph_path, serving_dir,
                      data.reference_outputs)
    write_model_facts(serving_dir, config.to_dict(), data.input_report, data.compatibility())
    write_training_summary(run_dir, {
        **history_summary(history, data.monitor), **data.summary_fields(), **data.pretrained_coverage(), "warm_start": warm,
        "model": describe_model(model, config.model, get_task(config.task_type).honours),
        "hyperparameters": hyperparameters,
        "resolved": data.resolved})


def write_warmup_requests(export_dir: str, requests: list[dict] | dict[str, list[dict]]) -> None:
    """Requests ({input: array}; for `serving_default`, or grouped by signature name) that TF
    Serving replays when it loads the version, so the first real request is not slow (PITFALLS 7.1)."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    from rnnflow.components.common.run_facts import WARMUP_FILE

    by_signature = requests if isinstance(requests, dict) else {"serving_default": requests}
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for signature, signature_requests in by_signature.items():
            for inputs in signature_requests:
                request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=signature))
                for name, values in inputs.items():
                    request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
                writer.write(prediction_log_pb2.PredictionLog(
                    predict_log=prediction_log_pb2.PredictLog(request=request)).SerializeToString())


def save_serving_model(module, model, export_dir: str, warmup_requests: list[dict] | dict[str, list[dict]]) -> None:
    """Saves a task's serving tf.Module (its `signatures()`) with CPU-portable recurrent kernels,
    then its warmup requests."""
    from rnnflow.models.recurrent import portable_kernels

    with portable_kernels(model):
        tf.saved_model.save(module, export_dir, signatures=module.signatures())
    if hasattr(module, "declared_input_shapes"):
        declare_input_shapes(export_dir, module.declared_input_shapes())
    write_warmup_requests(export_dir, warmup_requests)


def declare_input_shapes(export_dir: str, shapes: dict[str, dict[str, list]]) -> None:
    """Writes input shapes ({signature: {input: [None, 28]}}, None for any size) into the
    SignatureDefs of saved_model.pb, which TF Serving's model metadata shows clients. Only there:
    the traced graph keeps its any-shape inputs, because TF Serving does not enforce declared
    shapes and Grappler, given a static shape, would drop the in-graph checks that name a wrong
    length."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = os.path.join(export_dir, "saved_model.pb")
    saved = saved_model_pb2.SavedModel()
    with tf.io.gfile.GFile(path, "rb") as f:
        saved.ParseFromString(f.read())
    for meta_graph in saved.meta_graphs:
        for signature, inputs in shapes.items():
            for name, dims in inputs.items():
                # A protobuf map inserts what it is asked for: check first, so no input is made up.
                if signature not in meta_graph.signature_def or name not in meta_graph.signature_def[signature].inputs:
                    raise ValueError(f"{export_dir}: no input {name!r} in signature {signature!r} to declare a shape for")
                shape = meta_graph.signature_def[signature].inputs[name].tensor_shape
                shape.Clear()
                for size in dims:
                    shape.dim.add(size=-1 if size is None else size)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(saved.SerializeToString())


def as_raw_feature(text: tf.Tensor, spec):
    """A [batch] string tensor in the shape Transform's raw schema expects for this feature."""
    if isinstance(spec, tf.io.VarLenFeature):
        # Same as parsing a tf.Example whose text is empty: the value is absent.
        return tf.sparse.from_dense(text[:, tf.newaxis])
    if tuple(spec.shape) == (1,):
        return text[:, tf.newaxis]
    return text


def config_with_hyperparameters(fn_args) -> tuple[PipelineConfig, dict]:
    """The run's config with the Tuner's (or an imported) best hyperparameters applied."""
    config = parse_config(fn_args.custom_config["config"])
    if not fn_args.hyperparameters:
        return config, {}
    import keras_tuner

    values = {k: v for k, v in keras_tuner.HyperParameters.from_config(fn_args.hyperparameters).values.items()
              if k.partition(".")[0] in TUNABLE_SECTIONS}
    log.info("Using tuned hyperparameters: %s", values)
    return replace_fields(config, values), values


def resolve_auto(fn_args, config: PipelineConfig, train_examples: int) -> tuple[PipelineConfig, dict]:
    """`config` with every `auto` field resolved: the task's as Transform resolved them on the
    training data (its transform graph records them), then `training.*` for `train_examples`
    training examples (`resolve_training`). Prints the resolved values; returns the config and
    {"values": {dotted field: value}, "measured": what Transform measured}."""
    by_transform = run_facts.read_resolved(fn_args.transform_graph_path)
    config = replace_fields(config, by_transform["values"]) if by_transform["values"] else config
    training, by_examples = resolve_training(config.training, train_examples)
    config = dataclasses.replace(config, training=training)
    values = {**by_transform["values"], **by_examples}
    left = unresolved(config)
    if left:
        raise ValueError(f"{', '.join(left)}: auto was not resolved (the transform graph at "
                         f"{fn_args.transform_graph_path} records no value for it)")
    if values:
        line = "auto: " + ", ".join(f"{k}={v}" for k, v in values.items())
        log.info("%s (measured: %s; %d training examples)", line, by_transform["measured"], train_examples)
        print(PROGRESS_PREFIX + line, flush=True)
    return config, {"values": values, "measured": {**by_transform["measured"], "train_examples": train_examples}}


def worker_count() -> int:
    """Workers (chief included) that TF_CONFIG describes; 1 without TF_CONFIG."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 1
    try:
        cluster = json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw[:200]}") from None
    return max(1, len(cluster.get("chief", [])) + len(cluster.get("worker", [])))


def is_chief() -> bool:
    """Whether this process writes the outputs: the chief, or worker 0 when there is no chief."""
    if worker_count() == 1:
        return True
    config = json.loads(os.environ["TF_CONFIG"])
    task, cluster = config.get("task", {}), config.get("cluster", {})
    return task.get("type") == "chief" or ("chief" not in cluster and task.get("index", 0) == 0)


@functools.cache
def distribution_strategy() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy when TF_CONFIG names several workers (Vertex AI and Kubeflow
    training jobs set it), MirroredStrategy across several local GPUs, else the default.

    One per process, and run_fn asks first: collective ops must be configured before any
    TensorFlow op runs."""
    if worker_count() > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def serving_reference(model, tf_transform_output, transform_graph_path: str, serving_model_dir: str,
                      outputs_fn) -> None:
    """Scores Transform's raw eval sample the way training feeds the model (each example alone:
    no padding beyond its own length) and records the predictions next to the model, for serving
    validation's skew check. `outputs_fn(model, transformed_batch) -> {serving output: tensor}`
    is the task's, traced once with relaxed shapes: called eagerly, a recurrent model steps in
    Python, about 1.5 s for one 700-token review against 0.01 s traced (64 examples: a minute
    of every IMDB run). The transform is TFT's own graph on the raw examples."""
    from rnnflow.components.ingest.input_report import read_raw_eval_sample, write_serving_reference

    examples = read_raw_eval_sample(transform_graph_path)
    if not examples:
        return
    raw = tf.io.parse_example(examples, tf_transform_output.raw_feature_spec())
    transformed = tf_transform_output.transform_features_layer()(raw)
    outputs_of = tf.function(lambda batch: outputs_fn(model, batch), reduce_retracing=True)
    rows = [outputs_of({k: v[i:i + 1] for k, v in transformed.items()}) for i in range(len(examples))]
    outputs = {k: np.concatenate([np.asarray(r[k]) for r in rows]).tolist() for k in rows[0]}
    write_serving_reference(serving_model_dir, examples, outputs)


def output_dirs(fn_args) -> tuple[str, str]:
    """(serving model dir, model run dir) to write: the Trainer's on the chief; scratch
    directories on the other workers, which must still save (MultiWorkerMirroredStrategy saves
    collectively) but whose copies are discarded."""
    if is_chief():
        return fn_args.serving_model_dir, fn_args.model_run_dir
    import tempfile

    scratch = tempfile.mkdtemp(prefix="rnnflow-worker-")
    return os.path.join(scratch, "Format-Serving"), os.path.join(scratch, "model_run")


def report_cudnn_eligibility(model, gpu_present: bool) -> None:
    for layer in cudnn_eligibility(model):
        if layer["eligible"]:
            log.info("cuDNN: %s is eligible", layer["layer"])
        elif gpu_present:
            log.warning("cuDNN: %s will NOT use the cuDNN kernel: %s", layer["layer"],
                        "; ".join(layer["reasons"]))
        else:
            log.info("cuDNN: %s is not eligible: %s", layer["layer"], "; ".join(layer["reasons"]))


def history_summary(history, monitor: tuple[str, str] = VAL_LOSS) -> dict:
    name, mode = monitor if monitor[0] in history.history else VAL_LOSS  # multi-worker: val_loss
    watched = history.history.get(name, [])
    best = (min if mode == "min" else max)(watched) if watched else None
    return {
        "epochs_run": len(history.epoch),
        "monitor": name,
        "best_epoch": watched.index(best) + 1 if watched else None,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        # Per epoch: steps, seconds, train and eval examples/s (TrainingProgress).
        "throughput": getattr(history, "throughput", []),
        "stopped_by_budget": getattr(history, "stopped_by_budget", None),
        # The learning-rate decay the time budget shortened: planned and fitted steps.
        "lr_decay_fitted_to_budget": getattr(history, "lr_decay", None),
    }


def fitted_schedule(optimizer):
    """The optimizer's learning-rate schedule when the time budget can move its horizon."""
    schedule = getattr(optimizer, "_learning_rate", None)  # Keras 3 keeps the schedule object here
    return schedule if hasattr(schedule, "fit_to") else None


def write_training_summary(run_dir: str, summary: dict) -> None:
    """Facts the run summary reports that only the Trainer knows."""
    run_facts.write_json(os.path.join(run_dir, run_facts.TRAINING_SUMMARY_FILE), summary)


class WarmStartError(ValueError):
    """training.warm_start: require, and the latest blessed model's weights cannot be reused."""


def warm_start(model, fn_args, config: PipelineConfig, compatibility: dict) -> dict:
    """Loads the latest blessed model's weights into `model` when training.warm_start allows
    and the model, task settings and data compatibility facts (vocabulary, columns) match;
    returns what happened, for the run summary."""
    mode = config.training.warm_start
    if mode == "none":
        return {"mode": mode, "used": False}
    base = os.path.dirname(fn_args.base_model.rstrip("/")) if fn_args.base_model else None
    reason = "there is no blessed model yet" if base is None else None
    if reason is None:
        try:
            facts = run_facts.read_json(os.path.join(base, run_facts.FACTS_FILE))
        except tf.errors.NotFoundError:
            facts = None
        reason = incompatibility(facts, config, compatibility)
    if reason is None:
        try:
            model.load_weights(os.path.join(base, run_facts.WEIGHTS_FILE))
        except (ValueError, OSError, tf.errors.OpError) as e:
            reason = f"its weights do not load into this model ({e})"
    if reason is None:
        log.info("Warm start from %s", base)
        return {"mode": mode, "used": True, "from": base}
    if mode == "require":
        raise WarmStartError(f"training.warm_start: require, but the latest blessed model ({base}) cannot be "
                             f"reused: {reason}")
    log.warning("Warm start not possible, training from scratch: %s", reason)
    return {"mode": mode, "used": False, "from": base, "reason": reason}


def incompatibility(facts: dict | None, config: PipelineConfig, compatibility: dict) -> str | None:
    """Why a model with these facts cannot seed this one, or None."""
    if facts is None or "compatibility" not in facts:
        return "it was trained before rnnflow recorded what warm starts need"
    current = config.to_dict()
    for section in ("model", "task"):
        for field, value in current[section].items():
            if facts["config"][section].get(field) != value:
                return (f"{section}.{field} changed ({facts['config'][section].get(field)!r} -> {value!r})")
    for key, value in compatibility.items():
        if facts["compatibility"].get(key) != value:
            return f"the {key.replace('_', ' ')} changed"
    return None


def save_weights(model, serving_model_dir: str) -> None:
    """The Keras weights next to the exported model, for later warm starts."""
    path = run_facts.beside_model(serving_model_dir, run_facts.WEIGHTS_FILE)
    if "://" not in path:
        model.save_weights(path)
        return
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:  # Keras writes h5 files locally only
        model.save_weights(os.path.join(scratch, run_facts.WEIGHTS_FILE))
        tf.io.gfile.copy(os.path.join(scratch, run_facts.WEIGHTS_FILE), path, overwrite=True)


def fit(config: PipelineConfig, fn_args, build, data, class_weight=None):
    """Builds (under the device strategy), warm-starts when configured, and fits with early
    stopping on the eval split.

    `data` provides train() and eval() datasets and compatibility() facts. Returns (model,
    history, warm start record); the model holds the best epoch's weights and float32 is
    the global policy again, for export.
    """
    keras.utils.set_random_seed(config.training.seed)
    gpus = tf.config.list_logical_devices("GPU")
    if config.training.mixed_precision and gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = distribution_strategy()
    with strategy.scope():
        model = build()
        warm = warm_start(model, fn_args, config, data.compatibility())
    model.summary(print_fn=log.info)
    report_cudnn_eligibility(model, gpu_present=bool(gpus))
    training = config.training
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if training.ema_momentum:
            log.warning("training.ema_momentum: the multi-worker loop evaluates and keeps the trained weights, "
                        "not their averages")
        history = distributed_fit(model, strategy, data.train(), data.eval(), training.epochs,
                                  training.early_stopping_patience, class_weight)
        keras.mixed_precision.set_global_policy("float32")
        return model, history, warm
    progress = TrainingProgress(
        epochs=training.epochs, batch_size=training.batch_size,
        steps_per_epoch=getattr(data, "steps_per_epoch", None), interval=training.progress_seconds,
        max_seconds=training.max_minutes * 60 if training.max_minutes else None, prefix=PROGRESS_PREFIX,
        schedule=fitted_schedule(model.optimizer))
    callbacks = training_callbacks(training, data, progress, fn_args.model_run_dir)
    # The datasets are finite (one pass per epoch); Keras warns when an epoch ends.
    warnings.filterwarnings("ignore", message="Your input ran out of data")
    history = model.fit(data.train(), validation_data=data.eval(), epochs=training.epochs,
                        callbacks=callbacks, class_weight=class_weight, verbose=0)
    history.throughput, history.stopped_by_budget = progress.epoch_records, progress.stopped_by_budget
    history.lr_decay = progress.lr_decay
    keras.mixed_precision.set_global_policy("float32")
    return model, history, warm


def training_callbacks(training: TrainingConfig, data, progress: TrainingProgress, log_dir: str) -> list:
    """fit's callbacks, in their order: the weight averages swapped in (with `ema_momentum`), the
    task's own eval scores (when it monitors one), early stopping on the task's monitor keeping the
    best epoch, TensorBoard, the progress lines and budget."""
    monitor, mode = getattr(data, "monitor", VAL_LOSS)
    return [
        # First: the weight averages are in the model for each epoch's evaluation and for every
        # callback after this one (the best epoch kept is its averaged weights), out of it to train.
        *([keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if training.ema_momentum else []),
        # Before early stopping, the progress line and Keras' History (appended last) read the logs.
        *([EvalScores(data)] if monitor != "val_loss" else []),
        keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=training.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.TensorBoard(log_dir=log_dir),
        progress,
    ]


class EvalScores(keras.callbacks.Callback):
    """Adds `data.eval_scores(model)` to each epoch's logs as val_<name>."""

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in self.data.eval_scores(self.model).items()})


def distributed_fit(model, strategy: tf.distribute.Strategy, train: tf.data.Dataset, evaluation: tf.data.Dataset,
                    epochs: int, patience: int, class_weight: dict | None = None):
    """Keras 3.6's model.fit fails under MultiWorkerMirroredStrategy ("Attempt to convert a
    value (PerReplica ...)": keras-team/keras#20585), so several workers train with this loop:
    each step runs on every replica through `strategy.run`, with the compiled loss averaged
    over the global batch and the compiled optimizer (which all-reduces the gradients). Every
    worker then evaluates the whole eval split with the same weights, so all of them take the
    same early-stopping decision (patience on val_loss, best weights restored), as fit would with
    a task that monitors val_loss (a task's own `eval_scores` are not computed here).
    Returns a keras History with loss, val_loss and the compiled metrics' val_ values."""
    # The loss and metrics compile() was given, as objects: a loss may be a closure (the CRF's
    # log-likelihood over its transition weights) that no compile config can rebuild.
    loss_fn = keras.losses.get(model.loss) if isinstance(model.loss, (str, dict)) else model.loss
    given = getattr(getattr(model, "_compile_metrics", None), "_user_metrics", None) or []
    metrics = [m if isinstance(m, keras.metrics.Metric) else keras.metrics.get(m) for m in given]
    weights = None
    if class_weight:
        weights = tf.constant([class_weight[i] for i in range(len(class_weight))], tf.float32)

    def per_example(y, prediction):
        values = loss_fn.call(y, prediction) if isinstance(loss_fn, keras.losses.Loss) else loss_fn(y, prediction)
        values = tf.cast(values, tf.float32)
        return tf.reshape(values, [tf.shape(values)[0], -1]) if values.shape.rank != 1 else values[:, None]

    def replica_step(x, y):
        with tf.GradientTape() as tape:
            prediction = model(x, training=True)
            values = tf.reduce_mean(per_example(y, prediction), axis=1)
            if weights is not None:  # one-hot labels: the weight of each row's class
                values *= tf.gather(weights, tf.argmax(y, axis=-1))
            loss = tf.nn.compute_average_loss(values)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            scaled = model.optimizer.scale_loss(loss)
        gradients = tape.gradient(scaled, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def train_step(batch):
        losses = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    @tf.function
    def eval_step(x, y):
        prediction = model(x, training=False)
        for metric in metrics:
            metric.update_state(y, prediction)
        values = tf.reduce_mean(per_example(y, prediction), axis=1)
        return tf.reduce_sum(values), tf.cast(tf.shape(values)[0], tf.float32)

    options = tf.data.Options()
    # Shard examples, not files: a split may have fewer files than there are workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    distributed = strategy.experimental_distribute_dataset(train.with_options(options))
    history = keras.callbacks.History()
    history.set_model(model)
    history.on_train_begin()
    best, best_weights, waited = float("inf"), None, 0
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for batch in distributed:
            interrupts.check("during training")
            total += float(train_step(batch))
            steps += 1
        summed, count = 0.0, 0.0
        for metric in metrics:
            metric.reset_state()
        for x, y in evaluation:
            batch_sum, batch_count = eval_step(x, y)
            summed, count = summed + float(batch_sum), count + float(batch_count)
        logs = {"loss": total / max(steps, 1), "val_loss": summed / max(count, 1.0),
                **{f"val_{m.name}": float(m.result()) for m in metrics}}
        history.on_epoch_end(epoch, logs)
        log.info("Epoch %d/%d (%d workers): %s", epoch + 1, epochs, worker_count(),
                 ", ".join(f"{k}={v:.4f}" for k, v in logs.items()))
        if logs["val_loss"] < best:
            best, best_weights, waited = logs["val_loss"], model.get_weights(), 0
        else:
            waited += 1
            if waited >= patience:
                break
    if best_weights is not None:
        model.set_weights(best_weights)
    return history


def length_buckets(max_length: int, smallest: int = 8) -> list[int]:
    """Bucket boundaries for sequences of up to `max_length`: 8, 16, 32, ... below it."""
    boundaries, edge = [], smallest
    while edge < max_length:
        boundaries.append(edge)
        edge *= 2
    return boundaries


def batched_by_length(dataset: tf.data.Dataset, feature: str, batch_size: int, max_length: int) -> tf.data.Dataset:
    """Batches of `batch_size` (features, label) rows of similar length (tf.data bucketing by
    the length of `feature`), each padded on the right with 0 to its own longest row, so masks
    stay right-padded (cuDNN-eligible) and little work is spent on padding. `dataset` yields
    batches whose `feature` is ragged (rows as long as their sequences, at most `max_length`)."""

    def dense_rows(features, label):  # one row of a ragged batch arrives as a ragged_rank-0 value
        return {k: tf.identity(v) for k, v in features.items()}, label

    boundaries = length_buckets(max_length)
    return dataset.unbatch().map(dense_rows).bucket_by_sequence_length(
        element_length_func=lambda features, label: tf.shape(features[feature])[0],
        bucket_boundaries=boundaries, bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
        pad_to_bucket_boundary=False)


def transformed_dataset(fn_args, files, config: PipelineConfig, tf_transform_output, label_key: str,
                        shuffle: bool):
    """One pass over Transform's output as (features, label) batches."""
    from tfx_bsl.public import tfxio

    training = config.training
    return fn_args.data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=training.batch_size, label_key=label_key, num_epochs=1,
                                       shuffle=shuffle, shuffle_seed=training.seed),
        tf_transform_output.transformed_metadata.schema)
