"""A localhost test double of tensorflow_model_server, which cannot be installed here (no PyPI
or Debian package, no container runtime).

It serves the newest numbered version under a model base path, as the real server does, over
the real server's two APIs, built on the real client libraries and protos:

- REST (`http.server`): `GET /v1/models/NAME` (version status), `GET .../metadata` (the
  SignatureDefMap as TF Serving renders it, with json_format), `POST ...:predict` with columnar
  `inputs` or row `instances`; a lone output comes back as `"outputs": value`, errors as HTTP 400
  `{"error": ...}`, an unknown model as 404;
- gRPC (`grpcio` with tensorflow-serving-api's `PredictionServiceServicer`): `Predict` and
  `GetModelMetadata`, errors as INVALID_ARGUMENT / NOT_FOUND.

What it does not do: version policies, labels, batching, monitoring, reloading. Tests that need
those run against the real binary and skip without it.

Run as a script, it takes the real binary's flags (--port, --rest_api_port, --model_name,
--model_base_path), so a test can put it on PATH as `tensorflow_model_server`. A model that does
not load is reported the way TF Serving reports it: the server keeps running and the version
status says END with the error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

try:
    import tensorflow_text  # noqa: F401 (the text models' ops)
except ImportError:
    pass


class ServedModel:
    def __init__(self, name: str, base_path: str):
        self.name = name
        versions = sorted((int(v) for v in os.listdir(base_path) if v.isdigit()), reverse=True)
        self.version = versions[0] if versions else 0
        self.error = None
        path = os.path.join(base_path, str(self.version))
        try:
            with open(os.path.join(path, "saved_model.pb"), "rb") as f:
                meta = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0]
            self.signature_defs = meta.signature_def
            self.model = tf.saved_model.load(path)
        except Exception as e:  # noqa: BLE001 (reported through the version status, as TF Serving does)
            self.error = f"{type(e).__name__}: {e}".splitlines()[0]

    def metadata(self) -> get_model_metadata_pb2.SignatureDefMap:
        signatures = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.signature_defs.items():
            signatures.signature_def[key].CopyFrom(value)
        return signatures

    def run(self, signature_name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        signature_name = signature_name or "serving_default"
        if signature_name not in self.model.signatures:
            raise ValueError(f"Serving signature name: \"{signature_name}\" not found in signature def")
        fn = self.model.signatures[signature_name]
        expected = set(fn.structured_input_signature[1])
        if set(inputs) != expected:
            raise ValueError(f"input size does not match signature: {len(inputs)}!={len(expected)} "
                             f"len({{{', '.join(sorted(inputs))}}}) != len({{{', '.join(sorted(expected))}}})")
        dtypes = {k: v.dtype for k, v in fn.structured_input_signature[1].items()}
        result = fn(**{k: tf.constant(v, dtypes[k]) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in result.items()}


def _json_value(array: np.ndarray):
    if array.dtype == object:
        return np.vectorize(lambda b: b.decode("utf-8", errors="replace"), otypes=[object])(array).tolist()
    return array.tolist()


class _RestHandler(BaseHTTPRequestHandler):
    served: ServedModel

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _model_path(self, path: str) -> str | None:
        """What follows /v1/models/NAME[/versions/N] ("", "/metadata", ":predict"); None: not this model."""
        match = re.match(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?(?P<rest>.*)$", path)
        if not match or match["name"] != self.served.name or (
                match["version"] and int(match["version"]) != self.served.version):
            return None
        return match["rest"]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        rest = self._model_path(self.path)
        if rest is None:
            return self._send(404, {"error": f"Servable not found for request: {self.path}"})
        if rest in ("", "/"):
            state = {"version": str(self.served.version), "state": "END" if self.served.error else "AVAILABLE",
                     "status": {"error_code": "UNKNOWN" if self.served.error else "OK",
                                "error_message": self.served.error or ""}}
            return self._send(200, {"model_version_status": [state]})
        if self.served.error:
            return self._send(404, {"error": f"Servable not found for request: Latest({self.served.name})"})
        if rest.strip("/") == "metadata":
            return self._send(200, {
                "model_spec": {"name": self.served.name, "signature_name": "", "version": str(self.served.version)},
                "metadata": {"signature_def": json_format.MessageToDict(self.served.metadata(),
                                                                         preserving_proto_field_name=True)}})
        return self._send(404, {"error": f"Malformed request: GET {self.path}"})

    def do_POST(self):  # noqa: N802
        rest = self._model_path(self.path)
        if rest is None or self.served.error:
            return self._send(404, {"error": f"Servable not found for request: Latest({self.served.name})"})
        if rest != ":predict":
            return self._send(404, {"error": f"Malformed request: POST {self.path}"})
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        except ValueError as e:
            return self._send(400, {"error": f"JSON Parse error: {e}"})
        try:
            if "inputs" in body:
                inputs = body["inputs"]
            else:  # row format: a list of {input: value}
                inputs = {k: [row[k] for row in body["instances"]] for k in body["instances"][0]}
            outputs = self.served.run(body.get("signature_name", ""),
                                      {k: np.asarray(v, dtype=object if _is_text(v) else None) for k, v in
                                       inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, KeyError, TypeError) as e:
            return self._send(400, {"error": getattr(e, "message", str(e))})
        values = {k: _json_value(v) for k, v in outputs.items()}
        key = "outputs" if "inputs" in body else "predictions"
        return self._send(200, {key: next(iter(values.values())) if len(values) == 1 else values})


def _is_text(values) -> bool:
    while isinstance(values, list) and values:
        values = values[0]
    return isinstance(values, str)


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, served: ServedModel):
        self.served = served

    def _check(self, spec, context) -> None:
        if spec.name != self.served.name or self.served.error or (
                spec.HasField("version") and spec.version.value != self.served.version):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({spec.name})")

    def Predict(self, request, context):  # noqa: N802 (the proto's naming)
        self._check(request.model_spec, context)
        try:
            outputs = self.served.run(request.model_spec.signature_name,
                                      {k: tf.make_ndarray(v) for k, v in request.inputs.items()})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, getattr(e, "message", str(e)))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        self._check(request.model_spec, context)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.served.name
        response.model_spec.version.value = self.served.version
        response.metadata["signature_def"].Pack(self.served.metadata())
        return response


class ModelServerDouble:
    """Serves `base_path`'s newest version as `name` on localhost; `rest_url`, `grpc_address`."""

    def __init__(self, name: str, base_path: str, rest_port: int = 0, grpc_port: int = 0):
        self.served = ServedModel(name, base_path)
        handler = type("Handler", (_RestHandler,), {"served": self.served})
        self.http = ThreadingHTTPServer(("127.0.0.1", rest_port), handler)
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                options=[("grpc.max_receive_message_length", 1 << 30),
                                         ("grpc.so_reuseport", 0)])
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(_PredictionService(self.served),
                                                                             self.grpc)
        self.grpc_port = self.grpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
        if self.grpc_port == 0:
            raise OSError(f"Failed to start gRPC server on port {grpc_port}: address already in use")
        self.rest_url = f"http://127.0.0.1:{self.http.server_address[1]}/v1/models/{name}"
        self.grpc_address = f"127.0.0.1:{self.grpc_port}"

    def __enter__(self):
        self.grpc.start()
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()
        self.grpc.stop(0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tensorflow_model_server (rnnflow test double)")
    parser.add_argument("--port", type=int, default=8500)
    parser.add_argument("--rest_api_port", type=int, default=0)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_base_path", required=True)
    args, _ = parser.parse_known_args(argv)  # the real server's other flags are accepted and ignored
    try:
        server = ModelServerDouble(args.model_name, args.model_base_path, args.rest_api_port, args.port)
    except OSError as e:
        print(f"Failed to start server. Error: {e}", file=sys.stderr, flush=True)
        return 1
    with server:
        print(f"Running gRPC ModelServer at 127.0.0.1:{server.grpc_port} ...", file=sys.stderr, flush=True)
        threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
