"""`rnnflow serving-config`: everything TF Serving needs to serve the pushed models, in one step.

Written into the output directory, for the models of the given configs:

- `models.config`: a ModelServerConfig (tensorflow_serving.config.model_server_config_pb2): per
  model its name, base path, version policy (`specific`: the versions labelled `stable` and
  `canary`; `latest`: the newest N; `all`) and the version labels;
- `batching_parameters.txt`: a BatchingParameters message, from TF Serving's batching guide: CPU,
  `num_batch_threads` = cores, `batch_timeout_micros` 0, enqueued batches = threads; GPU, larger
  batches with padded `allowed_batch_sizes` and a 2 ms timeout;
- `monitoring.config`: a MonitoringConfig exposing Prometheus metrics on the REST port;
- `docker-compose.yml`: tensorflow/serving of `serving.tf_serving_version` with the three files
  and the models mounted;
- `kubernetes.yaml`: a ConfigMap with the three files, a Deployment (readiness on the status
  of each model's `stable` label, liveness on the model status endpoint), a Service and a
  HorizontalPodAutoscaler.

The config files are built as protos and written in protobuf text format, then parsed back
before anything is replaced. tensorflow-serving-api's wheel ships model_server_config but not
session_bundle_config.proto (BatchingParameters) or monitoring_config.proto; those two messages
are declared here in a private descriptor pool with the field names and numbers of
tensorflow/serving's .proto files, so text format validates them the way the model server's
parser does.

Labels: the first call labels the newest pushed version `stable`. `--promote V` moves `stable`
to V (a rollback is the same with an older version), `--canary V` labels V `canary`; both read
the existing models.config and keep what they do not change. The server re-reads models.config
every MODEL_CONFIG_POLL_SECONDS, so a promotion needs no restart. TF Serving only resolves a
label to a version it has loaded, so a label must name a version the policy serves.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from importlib import metadata
from typing import Optional

import yaml
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2

from rnnflow.components.serving.serving_client import complete_versions
from rnnflow.pipeline.config import ConfigError, PipelineConfig

MODELS_CONFIG, BATCHING_FILE, MONITORING_FILE = "models.config", "batching_parameters.txt", "monitoring.config"
COMPOSE_FILE, KUBERNETES_FILE = "docker-compose.yml", "kubernetes.yaml"
# What the last call served (models and options), so `--promote V` alone can rewrite the rest.
STATE_FILE = "rnnflow-serving.json"
GRPC_PORT, REST_PORT = 8500, 8501
CONTAINER_CONFIG_DIR, CONTAINER_MODELS_DIR = "/config", "/models"
PROMETHEUS_PATH = "/monitoring/prometheus/metrics"
MODEL_CONFIG_POLL_SECONDS = 60
STABLE, CANARY = "stable", "canary"
POLICIES = ("specific", "latest", "all")


class ServingConfigError(ConfigError):
    """The deployment cannot be written as asked; the message names the model, version or file."""


def _declared_messages():
    """BatchingParameters and MonitoringConfig, as tensorflow/serving's .proto files declare them
    (session_bundle_config.proto, monitoring_config.proto: package tensorflow.serving)."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    field = descriptor_pb2.FieldDescriptorProto

    def add(message, name, number, kind, type_name=None, repeated=False):
        message.field.add(name=name, number=number, type=kind, type_name=type_name,
                          label=field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL)

    batching = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/servables/tensorflow/session_bundle_config.proto", package="tensorflow.serving",
        syntax="proto3", dependency=["google/protobuf/wrappers.proto"])
    message = batching.message_type.add(name="BatchingParameters")
    for name, number, wrapper in (("max_batch_size", 1, "Int64Value"), ("batch_timeout_micros", 2, "Int64Value"),
                                  ("max_enqueued_batches", 3, "Int64Value"), ("num_batch_threads", 4, "Int64Value"),
                                  ("thread_pool_name", 5, "StringValue"),
                                  ("enable_large_batch_splitting", 8, "BoolValue"),
                                  ("max_execution_batch_size", 9, "Int64Value")):
        add(message, name, number, field.TYPE_MESSAGE, f".google.protobuf.{wrapper}")
    add(message, "allowed_batch_sizes", 6, field.TYPE_INT64, repeated=True)
    add(message, "pad_variable_length_inputs", 7, field.TYPE_BOOL)
    pool.Add(batching)

    monitoring = descriptor_pb2.FileDescriptorProto(
        name="tensorflow_serving/config/monitoring_config.proto", package="tensorflow.serving", syntax="proto3")
    prometheus = monitoring.message_type.add(name="PrometheusConfig")
    add(prometheus, "enable", 1, field.TYPE_BOOL)
    add(prometheus, "path", 2, field.TYPE_STRING)
    add(monitoring.message_type.add(name="MonitoringConfig"), "prometheus_config", 1, field.TYPE_MESSAGE,
        ".tensorflow.serving.PrometheusConfig")
    pool.Add(monitoring)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.MonitoringConfig")))


BatchingParameters, MonitoringConfig = _declared_messages()


class _Dumper(yaml.SafeDumper):
    """Plain YAML for kubectl and compose: no anchors, multi-line strings as literal blocks."""

    def ignore_aliases(self, data):
        return True


_Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar(
    "tag:yaml.org,2002:str", value, style="|" if "\n" in value else None))


@dataclasses.dataclass(frozen=True)
class ServedModel:
    name: str
    serving_dir: str       # where the Pusher writes versions (a local path or a URI)
    tf_serving_version: str


@dataclasses.dataclass(frozen=True)
class Options:
    device: str = "cpu"              # cpu | gpu
    cpus: int = 4                    # cores per serving replica (batch threads, resource requests)
    version_policy: str = "specific"
    latest_versions: int = 1         # version_policy latest: how many
    promote: Optional[int] = None
    canary: Optional[int] = None
    image: Optional[str] = None
    replicas: tuple[int, int] = (2, 10)   # HorizontalPodAutoscaler min, max
    pvc: str = "rnnflow-models"      # Kubernetes: the claim holding local serving dirs


def served_model(config: PipelineConfig, serving_dir: str) -> ServedModel:
    return ServedModel(config.serving.model_name or config.name, serving_dir, config.serving.tf_serving_version)


def _container_base_path(model: ServedModel) -> str:
    return model.serving_dir if "://" in model.serving_dir else f"{CONTAINER_MODELS_DIR}/{model.name}"


def read_labels(output_dir: str) -> dict[str, dict[str, int]]:
    """The version labels of an existing models.config in `output_dir`, per model."""
    from tensorflow_serving.config import model_server_config_pb2

    path = os.path.join(output_dir, MODELS_CONFIG)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            parsed = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    except text_format.ParseError as e:
        raise ServingConfigError(f"{path}: not a ModelServerConfig: {e}") from None
    return {m.name: dict(m.version_labels) for m in parsed.model_config_list.config}


def models_config(models: list[ServedModel], options: Options, previous: dict[str, dict[str, int]],
                  label_only: Optional[str] = None):
    """The ModelServerConfig proto; `promote`/`canary` move the labels of every model, or of
    `label_only` alone."""
    from tensorflow_serving.config import model_server_config_pb2

    if options.version_policy not in POLICIES:
        raise ServingConfigError(f"--version-policy {options.version_policy}: one of {', '.join(POLICIES)}")
    config = model_server_config_pb2.ModelServerConfig()
    for model in models:
        versions = complete_versions(model.serving_dir)
        if not versions:
            raise ServingConfigError(f"model {model.name}: no pushed version in {model.serving_dir} (run the "
                                     "pipeline until a model is blessed and pushed, or point --run-dir at its run)")
        labels = dict(previous.get(model.name, {}))
        for label, version in ((STABLE, options.promote), (CANARY, options.canary)):
            if version is not None and label_only in (None, model.name):
                if version not in versions:
                    raise ServingConfigError(
                        f"model {model.name}: no version {version} in {model.serving_dir} "
                        f"(pushed: {', '.join(map(str, versions[-10:]))})")
                labels[label] = version
        labels = {k: v for k, v in labels.items() if v in versions}  # pruned versions lose their label
        labels.setdefault(STABLE, versions[-1])
        if options.canary is not None and label_only in (None, model.name) and options.canary == labels[STABLE]:
            raise ServingConfigError(
                f"--canary {options.canary}: version {options.canary} is model {model.name}'s stable version; a "
                "canary is another version (to make a version stable, use --promote)")
        if labels.get(CANARY) == labels[STABLE]:
            del labels[CANARY]  # the canary was promoted
        entry = config.model_config_list.config.add(name=model.name, base_path=_container_base_path(model),
                                                    model_platform="tensorflow")
        policy = entry.model_version_policy
        if options.version_policy == "specific":
            policy.specific.versions.extend(sorted(set(labels.values())))
        elif options.version_policy == "latest":
            policy.latest.num_versions = options.latest_versions
            served = versions[-options.latest_versions:]
            outside = {k: v for k, v in labels.items() if v not in served}
            if outside:
                raise ServingConfigError(
                    f"model {model.name}: {', '.join(f'{k}={v}' for k, v in outside.items())} is not among the "
                    f"latest {options.latest_versions} versions ({', '.join(map(str, served))}), and TF Serving only "
                    "labels versions it serves: use --version-policy specific")
        else:
            policy.all.SetInParent()
        for label, version in sorted(labels.items()):
            entry.version_labels[label] = version
    return config


def batching_parameters(options: Options):
    """Starting points from TF Serving's batching guide (batching/README.md, "CPU-only" and "GPU")."""
    parameters = BatchingParameters()
    parameters.num_batch_threads.value = options.cpus
    if options.device == "gpu":
        parameters.max_batch_size.value = 512
        parameters.batch_timeout_micros.value = 2000
        parameters.max_enqueued_batches.value = 100
        parameters.allowed_batch_sizes.extend([16, 32, 64, 128, 256, 512])
    else:
        parameters.max_batch_size.value = 128
        parameters.batch_timeout_micros.value = 0
        parameters.max_enqueued_batches.value = options.cpus
    return parameters


def monitoring_config():
    config = MonitoringConfig()
    config.prometheus_config.enable = True
    config.prometheus_config.path = PROMETHEUS_PATH
    return config


def image_for(models: list[ServedModel], options: Options) -> str:
    if options.image:
        return options.image
    releases = {m.tf_serving_version for m in models}
    if len(releases) > 1:
        raise ServingConfigError(f"the models name different serving.tf_serving_version ({', '.join(sorted(releases))}); "
                                 "one model server runs one release: align them or pass --image")
    release = releases.pop()
    if release.count(".") == 1:
        # Docker Hub tags releases X.Y.Z; the installed tensorflow-serving-api names the patch of ours.
        installed = metadata.version("tensorflow-serving-api")
        release = installed if installed.startswith(release + ".") else release + ".0"
    return f"tensorflow/serving:{release}" + ("-gpu" if options.device == "gpu" else "")


def server_args() -> list[str]:
    return [f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
            f"--model_config_file={CONTAINER_CONFIG_DIR}/{MODELS_CONFIG}",
            f"--model_config_file_poll_wait_seconds={MODEL_CONFIG_POLL_SECONDS}",
            "--enable_batching", f"--batching_parameters_file={CONTAINER_CONFIG_DIR}/{BATCHING_FILE}",
            f"--monitoring_config_file={CONTAINER_CONFIG_DIR}/{MONITORING_FILE}"]


def compose(models: list[ServedModel], options: Options, image: str) -> dict:
    volumes = [f"./:{CONTAINER_CONFIG_DIR}:ro"]
    volumes += [f"{os.path.abspath(m.serving_dir)}:{CONTAINER_MODELS_DIR}/{m.name}:ro"
                for m in models if "://" not in m.serving_dir]
    service = {"image": image, "command": server_args(), "ports": [f"{GRPC_PORT}:{GRPC_PORT}", f"{REST_PORT}:{REST_PORT}"],
               "volumes": volumes, "restart": "unless-stopped",
               "healthcheck": {"test": ["CMD-SHELL", f"timeout 5 bash -c '</dev/tcp/127.0.0.1/{REST_PORT}'"],
                               "interval": "10s", "retries": 6}}
    if options.device == "gpu":
        service["deploy"] = {"resources": {"reservations": {"devices": [
            {"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]}}}
    return {"services": {"tf-serving": service}}


def kubernetes(models: list[ServedModel], options: Options, image: str, files: dict[str, str]) -> list[dict]:
    app = "rnnflow-serving"
    labels = {"app": app}
    mounts = [{"name": "config", "mountPath": CONTAINER_CONFIG_DIR, "readOnly": True}]
    volumes: list[dict] = [{"name": "config", "configMap": {"name": f"{app}-config"}}]
    local = [m for m in models if "://" not in m.serving_dir]
    if local:
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": options.pvc, "readOnly": True}})
        mounts += [{"name": "models", "mountPath": f"{CONTAINER_MODELS_DIR}/{m.name}", "subPath": m.name,
                    "readOnly": True} for m in local]
    resources = {"requests": {"cpu": str(options.cpus), "memory": "2Gi"}, "limits": {"memory": "4Gi"}}
    if options.device == "gpu":
        resources["limits"]["nvidia.com/gpu"] = 1
    first = models[0].name
    container = {
        "name": "tf-serving", "image": image, "args": server_args(),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "http", "containerPort": REST_PORT}],
        "volumeMounts": mounts, "resources": resources,
        # Ready once the `stable` version answers (TF Serving resolves a label only to a loaded version).
        "readinessProbe": {"httpGet": {"path": f"/v1/models/{first}/labels/{STABLE}", "port": REST_PORT},
                           "periodSeconds": 10, "failureThreshold": 3},
        "livenessProbe": {"httpGet": {"path": f"/v1/models/{first}", "port": REST_PORT},
                          "initialDelaySeconds": 120, "periodSeconds": 30, "failureThreshold": 5},
    }
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config", "labels": labels},
         "data": files},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": labels},
         "spec": {"replicas": options.replicas[0], "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels, "annotations": {
                      "prometheus.io/scrape": "true", "prometheus.io/port": str(REST_PORT),
                      "prometheus.io/path": PROMETHEUS_PATH}},
                      "spec": {"containers": [container], "volumes": volumes}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": app, "labels": labels},
         "spec": {"selector": labels, "ports": [{"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
                                                {"name": "http", "port": REST_PORT, "targetPort": REST_PORT}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": app, "labels": labels},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
                  "minReplicas": options.replicas[0], "maxReplicas": options.replicas[1],
                  "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
    ]


def parse_back(files: dict[str, str]) -> None:
    """Every config file parses as its proto (what the model server does at start)."""
    from tensorflow_serving.config import model_server_config_pb2

    for name, message in ((MODELS_CONFIG, model_server_config_pb2.ModelServerConfig()),
                          (BATCHING_FILE, BatchingParameters()), (MONITORING_FILE, MonitoringConfig())):
        try:
            text_format.Parse(files[name], message)
        except text_format.ParseError as e:
            raise ServingConfigError(f"{name} does not parse back as {type(message).__name__}: {e}") from None


def read_state(output_dir: str) -> tuple[list[ServedModel], Options] | None:
    path = os.path.join(output_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    options = state["options"]
    options["replicas"] = tuple(options["replicas"])
    return [ServedModel(**m) for m in state["models"]], Options(**options)


def write(output_dir: str, models: list[ServedModel], options: Options,
          label_only: Optional[str] = None) -> dict[str, str]:
    """Writes the files into `output_dir` (all or none); returns {file: path}. The labels move only
    for the model `promote`/`canary` apply to: with several models, the caller passes one."""
    if options.device not in ("cpu", "gpu"):
        raise ServingConfigError(f"--device {options.device}: cpu or gpu")
    if options.cpus < 1 or options.latest_versions < 1:
        raise ServingConfigError("--cpus and --latest-versions must be at least 1")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ServingConfigError(f"two configs serve the same model name: {names} (set serving.model_name)")
    output_dir = os.path.abspath(output_dir)
    config = models_config(models, options, read_labels(output_dir), label_only)
    files = {MODELS_CONFIG: text_format.MessageToString(config),
             BATCHING_FILE: text_format.MessageToString(batching_parameters(options)),
             MONITORING_FILE: text_format.MessageToString(monitoring_config())}
    parse_back(files)
    image = image_for(models, options)
    documents = {COMPOSE_FILE: yaml.dump(compose(models, options, image), Dumper=_Dumper, sort_keys=False),
                 KUBERNETES_FILE: yaml.dump_all(kubernetes(models, options, image, files), Dumper=_Dumper,
                                                sort_keys=False),
                 STATE_FILE: json.dumps({"models": [dataclasses.asdict(m) for m in models],
                                         "options": dataclasses.asdict(dataclasses.replace(
                                             options, promote=None, canary=None))}, indent=2)}
    os.makedirs(output_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".serving-config-", dir=output_dir)
    try:
        for name, text in {**files, **documents}.items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as f:
                f.write(text)
        # models.config last: a server polling it sees the new labels once the rest is in place.
        for name in [*documents, BATCHING_FILE, MONITORING_FILE, MODELS_CONFIG]:
            os.replace(os.path.join(staging, name), os.path.join(output_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: os.path.join(output_dir, name) for name in [*files, *documents]}
