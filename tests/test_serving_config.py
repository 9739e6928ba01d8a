"""`rnnflow serving-config`: the deployment files, parsed back through TF Serving's protos, and the
stable/canary labels moving with --promote and --canary."""

import json
import os

import pytest
import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from conftest import run_cli
from rnnflow.pipeline import serving_config as deploy


def pushed(tmp_path, name, versions):
    """A serving directory as the Pusher leaves it: numbered versions with saved_model.pb (their
    content does not matter here), plus a staging directory TF Serving ignores."""
    directory = tmp_path / "serving" / name
    for version in versions:
        (directory / str(version)).mkdir(parents=True)
        (directory / str(version) / "saved_model.pb").write_bytes(b"")
    (directory / ".staging-abc").mkdir()
    (directory / "99").mkdir()  # no saved_model.pb: not a complete version
    return deploy.ServedModel(name, str(directory), "2.16")


def parse(path, message):
    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), message)


def test_every_config_file_parses_back_through_tf_servings_protos(tmp_path):
    models = [pushed(tmp_path, "sentiment", [10, 11, 12]), pushed(tmp_path, "forecast", [7])]
    out = tmp_path / "deploy"
    written = deploy.write(str(out), models, deploy.Options(cpus=6))
    config = parse(written[deploy.MODELS_CONFIG], model_server_config_pb2.ModelServerConfig())
    entries = {m.name: m for m in config.model_config_list.config}
    assert set(entries) == {"sentiment", "forecast"}
    sentiment = entries["sentiment"]
    assert sentiment.base_path == "/models/sentiment" and sentiment.model_platform == "tensorflow"
    assert list(sentiment.model_version_policy.specific.versions) == [12]
    assert dict(sentiment.version_labels) == {"stable": 12}
    assert dict(entries["forecast"].version_labels) == {"stable": 7}

    batching = parse(written[deploy.BATCHING_FILE], deploy.BatchingParameters())
    assert (batching.num_batch_threads.value, batching.max_enqueued_batches.value) == (6, 6)
    assert batching.HasField("batch_timeout_micros") and batching.batch_timeout_micros.value == 0
    monitoring = parse(written[deploy.MONITORING_FILE], deploy.MonitoringConfig())
    assert monitoring.prometheus_config.enable and monitoring.prometheus_config.path == deploy.PROMETHEUS_PATH

    # The batching messages this module declares have tensorflow/serving's field numbers: the wire
    # format of a field set here is what the model server's own BatchingParameters reads.
    assert deploy.BatchingParameters.DESCRIPTOR.fields_by_name["allowed_batch_sizes"].number == 6
    assert deploy.BatchingParameters.DESCRIPTOR.fields_by_name["max_execution_batch_size"].number == 9

    compose = yaml.safe_load(open(written[deploy.COMPOSE_FILE]))["services"]["tf-serving"]
    assert compose["image"] == "tensorflow/serving:2.16.1"
    assert f"{models[0].serving_dir}:/models/sentiment:ro" in compose["volumes"]
    assert "--model_config_file=/config/models.config" in compose["command"]

    documents = {d["kind"]: d for d in yaml.safe_load_all(open(written[deploy.KUBERNETES_FILE]))}
    assert set(documents) == {"ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler"}
    for name in (deploy.MODELS_CONFIG, deploy.BATCHING_FILE, deploy.MONITORING_FILE):
        assert documents["ConfigMap"]["data"][name] == open(written[name]).read()
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v1/models/sentiment/labels/stable", "port": 8501}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v1/models/sentiment", "port": 8501}
    assert container["resources"]["requests"]["cpu"] == "6"
    assert documents["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == \
        documents["Deployment"]["metadata"]["name"]
    assert not [name for name in os.listdir(out) if name.startswith(".")]  # no staging left


def test_gpu_batching_pads_to_allowed_sizes_ending_at_the_largest_batch(tmp_path):
    written = deploy.write(str(tmp_path / "d"), [pushed(tmp_path, "m", [1])], deploy.Options(device="gpu"))
    batching = parse(written[deploy.BATCHING_FILE], deploy.BatchingParameters())
    assert batching.allowed_batch_sizes[-1] == batching.max_batch_size.value
    assert list(batching.allowed_batch_sizes) == sorted(batching.allowed_batch_sizes)
    compose = yaml.safe_load(open(written[deploy.COMPOSE_FILE]))["services"]["tf-serving"]
    assert compose["image"].endswith("-gpu")


def labels(out):
    return deploy.read_labels(str(out))["sentiment"]


def test_promote_moves_stable_and_an_older_version_rolls_back(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11, 12])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options())
    deploy.write(str(out), [model], deploy.Options(canary=11))
    assert labels(out) == {"stable": 12, "canary": 11}
    config = parse(out / deploy.MODELS_CONFIG, model_server_config_pb2.ModelServerConfig())
    assert list(config.model_config_list.config[0].model_version_policy.specific.versions) == [11, 12]
    deploy.write(str(out), [model], deploy.Options(promote=11))  # the canary becomes stable
    assert labels(out) == {"stable": 11}
    deploy.write(str(out), [model], deploy.Options(promote=10))  # rollback
    assert labels(out) == {"stable": 10}
    deploy.write(str(out), [model], deploy.Options())  # a plain rewrite keeps the labels
    assert labels(out) == {"stable": 10}


def test_promoting_a_version_that_was_never_pushed_is_refused_and_changes_nothing(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options())
    before = {name: (out / name).read_text() for name in os.listdir(out)}
    with pytest.raises(deploy.ServingConfigError, match=r"model sentiment: no version 99 in .*serving/sentiment "
                                                        r"\(pushed: 10, 11\)"):
        deploy.write(str(out), [model], deploy.Options(promote=99))
    assert {name: (out / name).read_text() for name in os.listdir(out)} == before


def test_latest_policy_refuses_a_label_on_a_version_it_would_not_serve(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11, 12])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options(version_policy="latest", latest_versions=2))
    config = parse(out / deploy.MODELS_CONFIG, model_server_config_pb2.ModelServerConfig())
    assert config.model_config_list.config[0].model_version_policy.latest.num_versions == 2
    with pytest.raises(deploy.ServingConfigError, match=r"stable=10 is not among the latest 2 versions \(11, 12\)"):
        deploy.write(str(out), [model], deploy.Options(version_policy="latest", latest_versions=2, promote=10))


def test_a_pruned_stable_version_falls_back_to_the_newest(tmp_path):
    model = pushed(tmp_path, "sentiment", [10, 11])
    out = tmp_path / "deploy"
    deploy.write(str(out), [model], deploy.Options(promote=10))
    (tmp_path / "serving" / "sentiment" / "10" / "saved_model.pb").unlink()  # serving.keep_versions pruned it
    deploy.write(str(out), [model], deploy.Options())
    assert labels(out) == {"stable": 11}


@pytest.mark.e2e
def test_serving_config_cli_serves_the_pushed_model_and_promote_alone_reuses_the_last_call(sentiment_run, tmp_path):
    output_dir = sentiment_run.output_dir
    summary = json.loads((output_dir / "run_summary.json").read_text())
    version = int(os.path.basename(summary["pushed_model"]))
    out = tmp_path / "deploy"
    result = run_cli(["serving-config", "--output-dir", str(out), "--config", "sentiment",
                      "--run-dir", str(output_dir)])
    assert result.returncode == 0, result.stderr
    assert f"sentiment: {os.path.dirname(summary['pushed_model'])}  labels stable={version}" in result.stdout
    result = run_cli(["serving-config", "--output-dir", str(out), "--promote", str(version + 1)])
    assert result.returncode == 2
    assert f"model sentiment: no version {version + 1}" in result.stderr
    result = run_cli(["serving-config", "--output-dir", str(tmp_path / "empty"), "--promote", "3"])
    assert result.returncode == 2 and "--config: name the configs to serve" in result.stderr
