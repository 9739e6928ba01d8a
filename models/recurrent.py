"""Recurrent encoders, masked readouts and classifier heads (Keras 3).

Defaults keep every recurrent layer eligible for the cuDNN kernel on GPU:
tanh/sigmoid activations, no recurrent dropout (dropout sits between layers),
right-padded masks from `Embedding(mask_zero=True)`. `cudnn_eligibility`
checks a built model against those conditions.
"""

from __future__ import annotations

import contextlib
import math

import keras
import tensorflow as tf

from rnnflow.models.mingru import MinGRU
from rnnflow.pipeline.config import AUTO, ModelConfig, TrainingConfig

CELLS = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
    "mingru": MinGRU,
}


@keras.saving.register_keras_serializable(package="rnnflow")
class MaskedMaxPooling(keras.layers.Layer):
    """Max over time steps that ignores padded steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, x, mask=None):
        if mask is not None:
            x = tf.where(tf.cast(mask, tf.bool)[:, :, tf.newaxis], x, tf.fill(tf.shape(x), x.dtype.min))
        return tf.reduce_max(x, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package="rnnflow")
class AttentionPooling(keras.layers.Layer):
    """Additive attention over time steps (Bahdanau-style scores), padding excluded."""

    def __init__(self, units: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.supports_masking = True

    def build(self, input_shape):
        self.project = keras.layers.Dense(self.units, activation="tanh", name="project")
        self.project.build(input_shape)
        self.score = keras.layers.Dense(1, use_bias=False, name="score")
        self.score.build((*input_shape[:-1], self.units))

    def call(self, x, mask=None):
        scores = self.score(self.project(x))[..., 0]
        if mask is not None:
            scores = tf.where(tf.cast(mask, tf.bool), scores, tf.fill(tf.shape(scores), scores.dtype.min))
        weights = tf.nn.softmax(scores, axis=1)
        return tf.reduce_sum(x * weights[:, :, tf.newaxis], axis=1)

    def compute_mask(self, inputs, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}


POOLING = {
    "mean": lambda model: keras.layers.GlobalAveragePooling1D(name="mean_pooling"),
    "max": lambda model: MaskedMaxPooling(name="max_pooling"),
    "attention": lambda model: AttentionPooling(model.units, name="attention_pooling"),
}


@keras.saving.register_keras_serializable(package="rnnflow")
class WordDropout(keras.layers.Layer):
    """In training only, each real word id (not the padding id 0) becomes `oov_id` with
    probability `rate`; at inference the ids pass unchanged (`model.word_dropout`)."""

    def __init__(self, rate: float, oov_id: int, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.oov_id = rate, oov_id

    def call(self, ids, training=None):
        if not training or not self.rate:
            return ids
        dropped = (tf.random.uniform(tf.shape(ids)) < self.rate) & (ids != 0)
        return tf.where(dropped, tf.cast(self.oov_id, ids.dtype), ids)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "oov_id": self.oov_id}


def word_embedding(ids, model: ModelConfig, *, vocab_size: int, oov_id: int | None = None, vectors=None,
                   name: str = "embedding"):
    """Word ids [batch, steps] (0: padding, masked) -> embeddings; with `model.word_dropout` and
    an `oov_id`, words are dropped to it in training (`WordDropout`); `vectors` [vocab_size,
    embedding_dim]: the initial rows (pretrained vectors), frozen with `model.freeze_embeddings`.
    The one word embedding of the classifier and the tagger."""
    if model.word_dropout and oov_id is not None:
        ids = WordDropout(model.word_dropout, oov_id, name="word_dropout")(ids)
    initializer = "uniform" if vectors is None else keras.initializers.Constant(vectors)
    return keras.layers.Embedding(vocab_size, model.embedding_dim, mask_zero=True, name=name,
                                  embeddings_initializer=initializer,
                                  trainable=not (vectors is not None and model.freeze_embeddings))(ids)


def recurrent_layer(model: ModelConfig, return_sequences: bool, name: str) -> keras.layers.Layer:
    """One (optionally bidirectional) recurrent layer of the configured cell."""
    layer = CELLS[model.cell](model.units, return_sequences=return_sequences, name=name)
    if model.bidirectional:
        return keras.layers.Bidirectional(layer, name=f"bi_{name}")
    return layer


def recurrent_stack(x, model: ModelConfig, *, last_sequences: bool = True, input_dropout: float = 0.0,
                    final_dropout: bool = True):
    """The configured stack, the one every model builder uses: `model.layers` layers of `model.cell`
    (bidirectional if set), a residual connection where a layer keeps the width, layer
    normalization if set, and `model.dropout` between layers (and after the last unless
    `final_dropout` is False). `input_dropout` drops the stack's inputs first. The last layer
    returns per-step outputs when `last_sequences`, else its final state."""
    x = keras.layers.Dropout(input_dropout, name="input_dropout")(x) if input_dropout else x
    for depth in range(model.layers):
        last = depth == model.layers - 1
        sequences = last_sequences or not last
        y = recurrent_layer(model, return_sequences=sequences, name=f"{model.cell}_{depth}")(x)
        if model.residual and sequences and x.shape[-1] == y.shape[-1]:
            y = keras.layers.Add(name=f"residual_{depth}")([x, y])
        if model.layer_norm:
            y = keras.layers.LayerNormalization(name=f"layer_norm_{depth}")(y)
        x = keras.layers.Dropout(model.dropout, name=f"dropout_{depth}")(y) if final_dropout or not last else y
    return x


def encode_sequence(x, model: ModelConfig):
    """The recurrent stack, then the configured readout -> [batch, features]. "last" pooling takes
    the final state from the last layer (masks respected by Keras)."""
    x = recurrent_stack(x, model, last_sequences=model.pooling != "last", input_dropout=model.input_dropout)
    if model.pooling != "last":
        x = POOLING[model.pooling](model)(x)
    return x


def build_text_classifier(model: ModelConfig, training: TrainingConfig, *, vocab_size: int,
                          num_classes: int, input_name: str, label_smoothing: float = 0.0,
                          output_name: str = "probabilities", steps_per_epoch: int | None = None,
                          oov_id: int | None = None, vectors=None) -> keras.Model:
    """token ids [batch, tokens] (right-padded with 0; any length: each batch is padded to its
    own longest row) -> class probabilities [batch, num_classes]. `oov_id`, `vectors`: see
    `word_embedding`."""
    token_ids = keras.Input(shape=(None,), dtype="int64", name=input_name)
    x = word_embedding(token_ids, model, vocab_size=vocab_size, oov_id=oov_id, vectors=vectors)
    x = encode_sequence(x, model)
    # float32 output even under mixed precision, so softmax and the loss stay stable.
    probabilities = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=output_name)(x)
    classifier = keras.Model({input_name: token_ids}, probabilities, name="text_classifier")
    classifier.compile(
        optimizer=make_optimizer(training, steps_per_epoch),
        # One-hot labels so label smoothing applies; the Trainer one-hot encodes class ids.
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")], jit_compile=JIT_COMPILE[training.jit_compile])
    return classifier


# training.jit_compile -> Keras' compile(jit_compile=...). "auto" is Keras' own choice: XLA
# on GPU when every layer supports it (cuDNN recurrent layers do not), never on CPU.
JIT_COMPILE = {"auto": "auto", "on": True, "off": False}

FORECAST_LOSSES = {
    "mae": keras.losses.MeanAbsoluteError,
    "mse": keras.losses.MeanSquaredError,
    "huber": keras.losses.Huber,
}


class SubtractLastStep(keras.layers.Layer):
    """Each of the first `channels` features minus its value at the last step (the
    features after them, e.g. calendar cycles, pass unchanged)."""

    def __init__(self, channels: int, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels

    def call(self, window):
        series = window[..., :self.channels]
        return keras.ops.concatenate([series - series[:, -1:, :], window[..., self.channels:]], axis=-1)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


class AddLastValue(keras.layers.Layer):
    """forecast [batch, horizon, targets] + the last window value of each target."""

    def __init__(self, target_indices: list[int], **kwargs):
        super().__init__(**kwargs)
        self.target_indices = list(target_indices)

    def call(self, forecast, window):
        last = keras.ops.take(window[:, -1, :], self.target_indices, axis=-1)
        return forecast + last[:, None, :]

    def get_config(self):
        return {**super().get_config(), "target_indices": self.target_indices}


def build_forecaster(model: ModelConfig, training: TrainingConfig, *, lookback: int, input_width: int,
                     horizon: int, target_indices: list[int], series_channels: int, anchor: str, loss: str,
                     input_name: str, steps_per_epoch: int | None = None) -> keras.Model:
    """[batch, lookback, input_width] -> [batch, horizon, targets]: a direct multi-horizon head
    (all steps at once from the encoding, no feedback of its own forecasts).

    `anchor="last_value"` makes the model level-invariant (NLinear, Zeng et al. 2023):
    the encoder sees each series relative to its last value and the head predicts the
    change from it, so a level shift between train and test does not bias forecasts.
    `target_indices` are the targets' positions among the first `series_channels` features.
    """
    window = keras.Input(shape=(lookback, input_width), dtype="float32", name=input_name)
    x = SubtractLastStep(series_channels, name="relative_to_last")(window) if anchor == "last_value" else window
    x = encode_sequence(x, model)
    targets = len(target_indices)
    x = keras.layers.Dense(horizon * targets, dtype="float32", name="horizon_head")(x)
    # float32 to the end (under mixed precision, layers default to float16 compute).
    forecast = keras.layers.Reshape((horizon, targets), dtype="float32",
                                    name="change" if anchor == "last_value" else "forecast")(x)
    if anchor == "last_value":
        forecast = AddLastValue(target_indices, dtype="float32", name="forecast")(forecast, window)
    forecaster = keras.Model({input_name: window}, forecast, name="forecaster")
    forecaster.compile(optimizer=make_optimizer(training, steps_per_epoch), loss=FORECAST_LOSSES[loss](),
                       metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
                       jit_compile=JIT_COMPILE[training.jit_compile])
    return forecaster


@keras.saving.register_keras_serializable(package="rnnflow")
class BudgetedCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine decay from `initial_learning_rate` to 0 over `decay_steps`, a horizon that a time
    budget may move while training (`fit_to`, called by the Trainer's progress callback from
    measured step times): a run that `training.max_minutes` ends early still ends annealed
    instead of at a high learning rate. The horizon never goes past the planned `decay_steps`."""

    def __init__(self, initial_learning_rate: float, decay_steps: int, name: str | None = None):
        super().__init__()
        self.initial_learning_rate = float(initial_learning_rate)
        self.planned_steps = max(1, int(decay_steps))
        self.name = name
        self._horizon = tf.Variable(float(self.planned_steps), trainable=False, dtype=tf.float32,
                                    name="lr_decay_steps")

    @property
    def decay_steps(self) -> int:
        return int(self._horizon.numpy())

    def fit_to(self, steps: int) -> int:
        """Decays over `steps` optimizer steps in all (at least 1, at most the planned horizon);
        returns the horizon now in force."""
        self._horizon.assign(float(min(max(1, int(steps)), self.planned_steps)))
        return self.decay_steps

    def __call__(self, step):
        progress = tf.minimum(tf.cast(step, tf.float32) / self._horizon, 1.0)
        return self.initial_learning_rate * 0.5 * (1.0 + tf.cos(math.pi * progress))

    def get_config(self) -> dict:
        return {"initial_learning_rate": self.initial_learning_rate, "decay_steps": self.planned_steps,
                "name": self.name}


def make_optimizer(training: TrainingConfig, steps_per_epoch: int | None = None):
    """The optimizer of a resolved training config (`resolve_training` replaces auto fields)."""
    for field in ("epochs", "learning_rate", "lr_schedule", "ema_momentum"):
        if getattr(training, field) == AUTO:
            raise ValueError(f"training.{field} is auto: resolve the config for the data first "
                             "(rnnflow.pipeline.config.resolve_training)")
    learning_rate = training.learning_rate
    decay_steps = max(1, (steps_per_epoch or 100) * training.epochs)
    if training.lr_schedule == "cosine":
        learning_rate = BudgetedCosineDecay(training.learning_rate, decay_steps)
    elif training.lr_schedule == "exponential":
        # Down to a tenth of the initial rate by the last epoch.
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            training.learning_rate, decay_steps=decay_steps, decay_rate=0.1)
    optimizers = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW,
                  "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    options = {"clipnorm": training.clipnorm} if training.clipnorm else {}
    if training.ema_momentum:
        # The Trainer swaps the averages in for each epoch's evaluation (SwapEMAWeights).
        options.update(use_ema=True, ema_momentum=training.ema_momentum)
    return optimizers[training.optimizer](learning_rate=learning_rate, **options)


def recurrent_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Every recurrent layer (minGRU included), looking inside Bidirectional wrappers."""
    return [layer for layer in model._flatten_layers(include_self=False)  # noqa: SLF001 (Keras' own traversal)
            if isinstance(layer, (keras.layers.RNN, MinGRU))]


def cudnn_eligibility(model: keras.Model) -> list[dict]:
    """Per recurrent layer: does it meet the cuDNN kernel conditions, and if not, why not.

    Conditions (Keras 3 LSTM/GRU): tanh activation, sigmoid recurrent activation,
    recurrent_dropout == 0, unroll False, use_bias True, GRU reset_after True,
    use_cudnn not False. Masks must be right-padded, which Transform guarantees.
    """
    report = []
    for layer in recurrent_layers(model):
        reasons = []
        if isinstance(layer, MinGRU):
            reasons.append("minGRU has no cuDNN kernel (it trains as a parallel scan instead)")
        elif not isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            reasons.append(f"{type(layer).__name__} has no cuDNN kernel")
        else:
            cell = layer.cell
            if keras.activations.serialize(cell.activation) != "tanh":
                reasons.append(f"activation is {keras.activations.serialize(cell.activation)}, not tanh")
            if keras.activations.serialize(cell.recurrent_activation) != "sigmoid":
                reasons.append(f"recurrent_activation is {keras.activations.serialize(cell.recurrent_activation)}, "
                               "not sigmoid")
            if cell.recurrent_dropout:
                reasons.append(f"recurrent_dropout is {cell.recurrent_dropout}, not 0")
            if layer.unroll:
                reasons.append("unroll is True")
            if not cell.use_bias:
                reasons.append("use_bias is False")
            if isinstance(layer, keras.layers.GRU) and not cell.reset_after:
                reasons.append("reset_after is False")
            if getattr(layer, "use_cudnn", "auto") is False:
                reasons.append("use_cudnn is False")
        report.append({"layer": layer.path if hasattr(layer, "path") else layer.name,
                       "eligible": not reasons, "reasons": reasons})
    return report


def describe_model(model: keras.Model, config: ModelConfig, honours=lambda field: True) -> dict:
    """What the run summary records about the model: the model.* fields the task uses
    (`honours("model.<field>")`), the parameter count and cuDNN eligibility."""
    fields = ("cell", "bidirectional", "layers", "units", "embedding_dim", "pooling", "residual", "layer_norm")
    return {**{f: getattr(config, f) for f in fields if honours(f"model.{f}")},
            "params": int(model.count_params()), "cudnn": cudnn_eligibility(model)}


@contextlib.contextmanager
def portable_kernels(model: keras.Model):
    """The portable kernel while tracing the export graph, then the layers as they were.

    A Keras 3 LSTM/GRU traced on a GPU embeds CudnnRNNV3, which CPU TF Serving cannot run;
    Bidirectional clones drop `use_cudnn`, so every nested layer is set explicitly. Weights
    are unchanged, and afterwards `cudnn_eligibility` reports what training used.
    """
    layers = [layer for layer in recurrent_layers(model) if hasattr(layer, "use_cudnn")]
    before = [layer.use_cudnn for layer in layers]
    for layer in layers:
        layer.use_cudnn = False
    try:
        yield model
    finally:
        for layer, value in zip(layers, before):
            layer.use_cudnn = value
