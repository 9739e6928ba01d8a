"""One client for a pushed model wherever it is served: a SavedModel directory on this machine,
a TF Serving REST endpoint, or a TF Serving gRPC address.

    from rnnflow.components.serving.serving_client import open_model
    model = open_model("http://localhost:8501/v1/models/sentiment")   # or "localhost:8500", or a dir
    model.predict({"text": ["a fine film", "dull"]})   # {"probabilities": array, "label": array}

`open_model` reads the signature's inputs and outputs (the SavedModel's signature, or TF
Serving's model metadata), so callers and `rnnflow predict` name no task: the columns of an
input file are matched to the signature's inputs by name. Every failure is a `ServingError`
naming the model (and, for a request the model refused, the model's own message).

Targets:
- a directory: a serving base directory (the newest numbered version is used) or one version
  (a directory with saved_model.pb); loaded in this process with TensorFlow (and TF Text, whose
  ops the text tasks' graphs use);
- `http://host:port/v1/models/NAME[/versions/N | /labels/LABEL]`, or `http://host:port` with
  `model_name`: TF Serving's REST API (`GET .../metadata`, `POST ...:predict`, columnar
  "inputs"; a model with one output answers `"outputs": value`, which is read back by name);
- `grpc://host:port` or `host:port`, with `model_name`: TF Serving's gRPC `PredictionService`
  (`GetModelMetadata`, `Predict`) with the protos of tensorflow-serving-api.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Optional

import numpy as np

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_TIMEOUT_SECONDS = 60.0
# TF Serving's gRPC server accepts messages up to 2 GiB; the client's default receive limit is
# 4 MiB, which a large batch of forecasts can pass.
GRPC_MAX_MESSAGE_BYTES = 1 << 30
# DataType enum names TF Serving's metadata uses -> the numpy dtype requests are built with.
INTEGER_DTYPES = ("DT_INT64", "DT_INT32")
_DTYPES = {"DT_STRING": np.object_, "DT_FLOAT": np.float32, "DT_DOUBLE": np.float64, "DT_INT64": np.int64,
           "DT_INT32": np.int32, "DT_BOOL": np.bool_}
_REST_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?/?$")


class ServingError(RuntimeError):
    """A model that cannot be reached, loaded or asked; the message names the model."""


class RequestRefused(ServingError):
    """The model answered, but refused this request (its input checks, a tensor it cannot
    form): another request may still succeed."""


@dataclasses.dataclass(frozen=True)
class Signature:
    inputs: dict[str, str]   # input name -> DT_* dtype name
    outputs: tuple[str, ...]


class Model:
    """A served model: `inputs` (name -> DT_* dtype), `outputs`, `predict(columns)`."""

    description: str
    signature_name: str
    signature: Signature

    @property
    def inputs(self) -> dict[str, str]:
        return self.signature.inputs

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.signature.outputs

    def predict(self, columns: dict) -> dict[str, np.ndarray]:
        """One request: `columns` maps every input to its values for the batch (first axis)."""
        missing = sorted(set(self.inputs) - set(columns))
        if missing:
            raise ServingError(f"{self.description}: the request has no input {', '.join(map(repr, missing))} "
                               f"(signature {self.signature_name} takes {', '.join(self.inputs)})")
        arrays = {name: _as_array(columns[name], self.inputs[name], name) for name in self.inputs}
        return self._predict(arrays)

    def _predict(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def close(self) -> None:
        """Releases connections (gRPC channel); the object is unusable afterwards."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _as_array(values, dtype: str, name: str) -> np.ndarray:
    if dtype == "DT_STRING":
        try:
            array = np.array(values, dtype=object)
        except ValueError as e:
            raise RequestRefused(f"input `{name}`: the rows cannot form one {dtype} tensor: {e}") from None
        if array.ndim == 1 and len(array) and isinstance(array[0], (list, tuple)):  # rows of different lengths
            raise RequestRefused(f"input `{name}`: the rows cannot form one {dtype} tensor (rows of different lengths)")
        return np.vectorize(lambda v: v.encode("utf-8") if isinstance(v, str) else v, otypes=[object])(array) \
            if array.size else array
    try:
        return np.asarray(values, dtype=_DTYPES.get(dtype, np.float32))
    except ValueError as e:  # rows of different lengths
        raise RequestRefused(f"input `{name}`: the rows cannot form one {dtype} tensor: {e}") from None


def open_model(target: str, model_name: Optional[str] = None, *, signature: str = DEFAULT_SIGNATURE,
               timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Model:
    """The model at `target` (a directory, a REST URL or a gRPC address; see the module docstring)."""
    if target.startswith(("http://", "https://")):
        return RestModel(target, model_name, signature=signature, timeout=timeout)
    if target.startswith("grpc://") or (re.fullmatch(r"[\w.\-]+:\d+", target) and not os.path.exists(target)):
        return GrpcModel(target.removeprefix("grpc://"), model_name, signature=signature, timeout=timeout)
    return LocalModel(target, signature=signature)


def complete_versions(serving_dir: str) -> list[int]:
    """The versions TF Serving can load from `serving_dir` (integer directories holding
    saved_model.pb), oldest first; none when it is not a directory."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(serving_dir):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(serving_dir)]
    return sorted(int(n) for n in names if n.isdigit()
                  and tf.io.gfile.exists(os.path.join(serving_dir, n, "saved_model.pb")))


def newest_version_dir(path: str) -> str:
    """`path` itself when it holds saved_model.pb, else its highest complete version directory."""
    import tensorflow as tf

    if tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not tf.io.gfile.isdir(path):
        raise ServingError(f"{path}: no such directory (and not an http:// URL or a host:port gRPC address)")
    versions = complete_versions(path)
    if versions:
        return os.path.join(path, str(versions[-1]))
    raise ServingError(f"{path}: neither a SavedModel (no saved_model.pb) nor a serving directory with a "
                       "numbered version holding one")


def load_saved_model(path: str, tags=None):
    """`tf.saved_model.load`, with TF Text's ops registered first (the text tasks' graphs use them)."""
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401
    except ImportError:
        pass
    return tf.saved_model.load(path, tags=list(tags) if tags else None)


class LocalModel(Model):
    def __init__(self, path: str, *, signature: str = DEFAULT_SIGNATURE):
        self.path = newest_version_dir(path)
        self.description = f"model {self.path}"
        self.signature_name = signature
        try:
            loaded = load_saved_model(self.path)
        except Exception as e:  # noqa: BLE001 (any load failure, in one line)
            raise ServingError(f"{self.description} does not load: {type(e).__name__}: {e}") from None
        if signature not in loaded.signatures:
            raise ServingError(f"{self.description} has no signature {signature!r} "
                               f"(it has {', '.join(sorted(loaded.signatures)) or 'none'})")
        self._loaded, self._fn = loaded, loaded.signatures[signature]
        specs = self._fn.structured_input_signature[1]
        self.signature = Signature(inputs={k: "DT_" + v.dtype.name.upper() for k, v in specs.items()},
                                   outputs=tuple(self._fn.structured_outputs))

    def _predict(self, arrays):
        import tensorflow as tf

        try:
            result = self._fn(**{k: tf.constant(v) for k, v in arrays.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            raise RequestRefused(f"{self.description} refused the request: {_model_message(str(e))}") from None
        return {k: v.numpy() for k, v in result.items()}


def _model_message(message: str) -> str:
    """The line of a TensorFlow error the model's own input checks wrote, else its first line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    for line in lines:
        if "assertion failed" in line:
            return line[line.index("assertion failed"):]
    return lines[0] if lines else message


class RestModel(Model):
    def __init__(self, url: str, model_name: Optional[str] = None, *, signature: str = DEFAULT_SIGNATURE,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS):
        import urllib.parse

        import requests

        parts = urllib.parse.urlsplit(url)
        match = _REST_PATH.match(parts.path) if parts.path not in ("", "/") else None
        if parts.path not in ("", "/") and not match:
            raise ServingError(f"{url}: not a TF Serving model URL (http://host:port/v1/models/NAME"
                               "[/versions/N|/labels/LABEL])")
        name = match["name"] if match else model_name
        if not name:
            raise ServingError(f"{url}: name the model (http://host:port/v1/models/NAME, or --model-name)")
        base = f"{parts.scheme}://{parts.netloc}/v1/models/{name}"
        if match and match["version"]:
            base += f"/versions/{match['version']}"
        elif match and match["label"]:
            base += f"/labels/{match['label']}"
        self.url, self.timeout, self.signature_name = base, timeout, signature
        self.description = f"model {base}"
        self._session = requests.Session()
        metadata = self._call("GET", f"{base}/metadata")
        try:
            signatures = metadata["metadata"]["signature_def"]["signature_def"]
        except (KeyError, TypeError):
            raise ServingError(f"{self.description}: the metadata has no signature_def: {str(metadata)[:300]}") from None
        self.signature = _signature_from_json(signatures, signature, self.description)

    def _call(self, method: str, url: str, body: Optional[dict] = None) -> dict:
        import requests

        try:
            response = self._session.request(method, url, json=body, timeout=self.timeout)
        except requests.ConnectionError as e:
            reason = re.search(r"\[Errno -?\d+\] [^'\")]+|Name or service not known|timed out", str(e))
            raise ServingError(f"cannot reach {self.description}: "
                               f"{reason.group(0) if reason else str(e)[:200]}") from None
        except requests.Timeout:
            raise ServingError(f"{self.description} did not answer within {self.timeout:g} s") from None
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": response.text[:300]}
        if response.status_code != 200 or "error" in answer:
            message = _model_message(str(answer.get("error", answer)))
            if method == "POST" and response.status_code == 400:
                raise RequestRefused(f"{self.description} refused the request: {message}")
            raise ServingError(f"{self.description} answered HTTP {response.status_code}: {message}")
        return answer

    def _predict(self, arrays):
        def jsonable(value):  # a scalar input (a generation setting) stays a scalar
            text = lambda x: x.decode("utf-8") if isinstance(x, bytes) else x
            return text(value.item()) if value.ndim == 0 else [text(x) for x in value.tolist()]

        body = {"signature_name": self.signature_name, "inputs": {k: jsonable(v) for k, v in arrays.items()}}
        outputs = self._call("POST", f"{self.url}:predict", body)["outputs"]
        if not isinstance(outputs, dict) or set(outputs) != set(self.outputs):
            outputs = {self.outputs[0]: outputs}  # TF Serving drops the name of a lone output
        return {k: _from_json(v) for k, v in outputs.items()}

    def close(self):
        self._session.close()


def _from_json(values) -> np.ndarray:
    array = np.asarray(values)
    return array.astype(object) if array.dtype.kind == "U" else array


def _signature_from_json(signatures: dict, name: str, description: str) -> Signature:
    if name not in signatures:
        raise ServingError(f"{description} has no signature {name!r} (it has {', '.join(sorted(signatures)) or 'none'})")
    signature = signatures[name]
    return Signature(inputs={k: v.get("dtype", "DT_FLOAT") for k, v in signature.get("inputs", {}).items()},
                     outputs=tuple(signature.get("outputs", {})))


class GrpcModel(Model):
    def __init__(self, address: str, model_name: Optional[str], *, signature: str = DEFAULT_SIGNATURE,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, version: Optional[int] = None,
                 version_label: Optional[str] = None):
        import grpc
        from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

        if not model_name:
            raise ServingError(f"{address}: name the model served there (model_name, --model-name)")
        self.address, self.name, self.timeout, self.signature_name = address, model_name, timeout, signature
        self.version, self.version_label = version, version_label
        self.description = f"model {model_name} at grpc://{address}"
        options = [("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES)]
        self._channel = grpc.insecure_channel(address, options=options)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._model_spec(request.model_spec)
        response = self._rpc(self._stub.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        from google.protobuf import json_format

        self.signature = _signature_from_json(
            json_format.MessageToDict(signatures, preserving_proto_field_name=True).get("signature_def", {}),
            signature, self.description)

    def _model_spec(self, spec) -> None:
        spec.name = self.name
        spec.signature_name = self.signature_name
        if self.version is not None:
            spec.version.value = self.version
        elif self.version_label:
            spec.version_label = self.version_label

    def _rpc(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as e:
            code = e.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise ServingError(f"cannot reach {self.description}: {code.name}: {e.details()}") from None
            error = RequestRefused if code == grpc.StatusCode.INVALID_ARGUMENT else ServingError
            raise error(f"{self.description} refused the request: {code.name}: "
                        f"{_model_message(e.details() or '')}") from None

    def _predict(self, arrays):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        for name, values in arrays.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(values))
        response = self._rpc(self._stub.Predict, request)
        return {k: tf.make_ndarray(v) for k, v in response.outputs.items()}

    def close(self):
        self._channel.close()


def to_jsonable(value):
    """A numpy output value as JSON: bytes as text, arrays as (nested) lists, floats as floats."""
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value] if value.ndim else to_jsonable(value.item())
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value
