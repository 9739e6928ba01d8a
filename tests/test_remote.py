"""Submitting runs and schedules to Kubeflow Pipelines and Vertex AI.

There is no cluster here. These tests run the real kfp and google-cloud-aiplatform client
code against a localhost test double: an HTTP server that records every request and
answers like the service's REST API would, with the fields the clients read back. What
they prove is what rnnflow sends; that a real cluster accepts it is not verified here.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_cli
from rnnflow.pipeline import remote
from rnnflow.pipeline.config import ConfigError, load_config

KFP = ["runner.type=kubeflow_v2", "runner.image=gcr.io/p/rnnflow:1", "runner.pipeline_root=gs://bucket/root"]


class _Double(BaseHTTPRequestHandler):
    """Records requests; answers with the JSON `answer(method, path, body)` returns."""

    def _handle(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = self.path.split("?")[0]
        self.server.requests.append((method, path, body))
        status, answer = self.server.answer(method, path, body)
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        self._handle("GET")

    def do_POST(self):  # noqa: N802
        self._handle("POST")

    def log_message(self, *args):
        pass


@pytest.fixture
def service():
    def start(answer):
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Double)
        server.requests, server.answer = [], answer
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_port}"

    servers = []
    yield start
    for server in servers:
        server.shutdown()


def _kfp_api(method, path, body):
    """The KFP v2beta1 REST API, as far as the client's calls go."""
    if path.startswith("/apis/v2beta1/healthz"):
        return 200, {"multi_user": False}
    if method == "GET" and path.startswith("/apis/v2beta1/experiments"):
        return 200, {"experiments": [], "total_size": 0}
    if method == "POST" and path == "/apis/v2beta1/experiments":
        return 200, {"experiment_id": "exp-1", "display_name": body["display_name"]}
    if method == "POST" and path == "/apis/v2beta1/recurringruns":
        return 200, {**body, "recurring_run_id": "rr-1", "status": "ENABLED"}
    if method == "POST" and path == "/apis/v2beta1/runs":
        return 200, {**body, "run_id": "run-1", "state": "PENDING"}
    return 404, {"error": f"no route {method} {path}"}


@pytest.fixture(scope="module")
def sentiment_spec(tmp_path_factory):
    from rnnflow.pipeline.kubeflow import compile_kubeflow_v2

    path = tmp_path_factory.mktemp("spec") / "sentiment.yaml"
    return compile_kubeflow_v2(load_config("sentiment", KFP), "gs://bucket/root", str(path))


def test_kfp_schedule_sends_a_recurring_run_with_the_spec_inline(service, sentiment_spec):
    server, host = service(_kfp_api)
    config = load_config("sentiment", [*KFP, f"runner.kfp_host={host}"])
    schedule = remote.check_schedule(remote.Schedule(cron="0 3 * * *", start_time="2026-12-01T00:00:00Z"),
                                     "kubeflow_v2")
    line = remote.send(remote.schedule_call(config, sentiment_spec, "gs://bucket/root", schedule), config)
    assert "rr-1" in line
    posted = {path: body for method, path, body in server.requests if method == "POST"}
    assert posted["/apis/v2beta1/experiments"]["display_name"] == "rnnflow"
    recurring = posted["/apis/v2beta1/recurringruns"]
    # KFP's cron has a seconds field; one run at a time; no backfill after a pause.
    assert recurring["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert recurring["trigger"]["cron_schedule"]["start_time"].startswith("2026-12-01T00:00:00")
    assert int(recurring["max_concurrency"]) == 1 and recurring["no_catchup"] is True
    assert recurring["experiment_id"] == "exp-1" and recurring["display_name"] == "sentiment"
    assert recurring["pipeline_spec"]["pipelineInfo"]["name"] == "sentiment"
    assert recurring["runtime_config"]["pipeline_root"] == "gs://bucket/root"
    assert recurring["mode"] == "ENABLE"


def test_kfp_run_submits_the_compiled_spec(service, sentiment_spec):
    server, host = service(_kfp_api)
    config = load_config("sentiment", [*KFP, f"runner.kfp_host={host}"])
    assert "run-1" in remote.send(remote.run_call(config, sentiment_spec, "gs://bucket/root"), config)
    run = next(body for method, path, body in server.requests if path == "/apis/v2beta1/runs")
    assert run["display_name"] == "sentiment" and run["experiment_id"] == "exp-1"
    root = run["pipeline_spec"]["root"]["dag"]["tasks"]
    assert {"CsvExampleGen", "Trainer", "Evaluator", "Pusher"} <= set(root)


def test_unreachable_or_wrong_kfp_host_names_the_field(service):
    with pytest.raises(ConfigError, match=r"runner.kfp_host: cannot reach http://127.0.0.1:9"):
        remote.check_reachable("http://127.0.0.1:9", timeout=5)
    _, host = service(lambda method, path, body: (404, {}))
    with pytest.raises(ConfigError, match="runner.kfp_host: .* answered 404"):
        remote.check_reachable(host)


@pytest.mark.parametrize("cron, message", [
    ("0 3 * *", "expected 5 fields"),
    ("61 3 * * *", "minute field '61': '61' is out of range 0-59"),
    ("0 24 * * *", "hour field '24'"),
    ("0 3 * 13 *", "month field '13'"),
    ("0 3 * * FUNDAY", "day of week field 'FUNDAY'"),
    ("*/0 3 * * *", "step 0"),
    ("? 3 * * *", "'?' is only allowed"),
    ("0 3 L * *", "day of month field 'L'"),
])
def test_malformed_cron_is_an_error_naming_the_field(cron, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        remote.check_cron(cron)


def test_valid_crons_pass_normalized():
    assert remote.check_cron("0  3 * * *") == "0 3 * * *"
    for cron in ("*/15 * * * *", "0 3 1,15 * MON-FRI", "30 2 ? JAN-MAR 0", "0 0 * * 7"):
        assert remote.check_cron(cron) == cron


@pytest.mark.parametrize("schedule, runner_type, message", [
    (remote.Schedule("0 3 * * *", time_zone="Europe/Berlin"), "kubeflow_v2", "--time-zone: Kubeflow"),
    (remote.Schedule("0 3 * * *", max_runs=3), "kubeflow_v2", "--max-runs"),
    (remote.Schedule("0 3 * * *", catchup=True), "vertex", "--catchup"),
    (remote.Schedule("0 3 * * *", time_zone="Mars/Olympus"), "vertex", "not an IANA time zone"),
    (remote.Schedule("0 3 * * *", start_time="tomorrow"), "vertex", "--start-time 'tomorrow'"),
    (remote.Schedule("0 3 * * *", start_time="2026-12-01T00:00:00"), "vertex", "time zone offset"),
    (remote.Schedule("0 3 * * *", start_time="2026-12-02T00:00:00Z", end_time="2026-12-01T00:00:00Z"),
     "vertex", "is not after"),
])
def test_schedule_options_each_runner_cannot_honour_are_errors(schedule, runner_type, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        remote.check_schedule(schedule, runner_type)


def test_vertex_schedule_call_carries_time_zone_and_limits():
    config = load_config("sentiment", ["runner.type=vertex", "runner.vertex_project=p", "runner.vertex_region=europe-west4",
                                       "runner.service_account=sa@p.iam.gserviceaccount.com"])
    schedule = remote.check_schedule(remote.Schedule("0 3 * * *", time_zone="Europe/Berlin", max_runs=30), "vertex")
    call = remote.schedule_call(config, "/s/spec.json", "gs://b/root", schedule)
    assert call.method == "create_schedule"
    assert call.arguments["cron"] == "TZ=Europe/Berlin 0 3 * * *"
    assert call.arguments["max_concurrent_run_count"] == 1 and call.arguments["max_run_count"] == 30
    assert call.arguments["location"] == "europe-west4" and call.arguments["pipeline_root"] == "gs://b/root"


def test_schedule_dry_run_prints_the_call_and_sends_nothing(tmp_path):
    spec = tmp_path / "spec.yaml"
    result = run_cli(["schedule", "--config", "sentiment", "--cron", "0 3 * * *", "--dry-run", "--spec", str(spec),
                      *[a for o in KFP for a in ("--set", o)], "--set", "runner.kfp_host=http://127.0.0.1:9"])
    assert result.returncode == 0, result.stderr[-2000:]
    call = json.loads(result.stdout[result.stdout.index("{"):])
    assert call["method"] == "create_recurring_run" and call["arguments"]["cron_expression"] == "0 0 3 * * *"
    assert call["arguments"]["pipeline_package_path"] == str(spec)
    import yaml

    assert yaml.safe_load(spec.read_text())["pipelineInfo"]["name"] == "sentiment"


def test_run_on_an_unreachable_kfp_host_fails_fast_naming_it():
    result = run_cli(["run", "--config", "sentiment", *[a for o in KFP for a in ("--set", o)],
                      "--set", "runner.kfp_host=http://127.0.0.1:9"], timeout=120)
    assert result.returncode == 2
    assert "runner.kfp_host: cannot reach http://127.0.0.1:9" in result.stderr


def test_local_runner_cannot_be_scheduled_by_rnnflow():
    result = run_cli(["schedule", "--config", "sentiment", "--cron", "0 3 * * *"], timeout=120)
    assert result.returncode == 2 and "runner.type: local" in result.stderr


def _vertex_api(method, path, body):
    """The Vertex AI v1 REST API, as far as PipelineJob.submit and create_schedule go."""
    parent = "projects/p/locations/europe-west4"
    if method == "POST" and path == f"/v1/{parent}/schedules":
        return 200, {**body, "name": f"{parent}/schedules/s1", "state": "ACTIVE"}
    if method == "POST" and path == f"/v1/{parent}/pipelineJobs":
        return 200, {**body, "name": f"{parent}/pipelineJobs/j1", "state": "PIPELINE_STATE_PENDING"}
    return 404, {"error": {"code": 404, "message": f"no route {method} {path}"}}


@pytest.fixture
def vertex(service, monkeypatch):
    """Vertex AI settings pointing at the double, with anonymous credentials; the GCS bucket
    check PipelineJob.submit makes (storage.googleapis.com, not the Vertex API) is recorded."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform.utils import gcs_utils

    server, host = service(_vertex_api)
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "p"))
    buckets = []
    monkeypatch.setattr(gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist",
                        lambda **kwargs: buckets.append(kwargs))
    config = load_config("sentiment", ["runner.type=vertex", "runner.vertex_project=p",
                                       "runner.vertex_region=europe-west4", f"runner.vertex_api_endpoint={host}",
                                       "runner.service_account=sa@p.iam.gserviceaccount.com"])
    return server, config, buckets


def test_vertex_schedule_sends_a_schedule_with_the_pipeline_job(vertex, sentiment_spec):
    server, config, _ = vertex
    schedule = remote.check_schedule(remote.Schedule("0 3 * * *", time_zone="Europe/Berlin", max_runs=30,
                                                     end_time="2027-06-01T00:00:00Z"), "vertex")
    line = remote.send(remote.schedule_call(config, sentiment_spec, "gs://bucket/root", schedule), config)
    assert "schedules/s1" in line
    method, path, body = server.requests[-1]
    assert body["cron"] == "TZ=Europe/Berlin 0 3 * * *"
    assert int(body["maxConcurrentRunCount"]) == 1 and int(body["maxRunCount"]) == 30
    assert body["endTime"].startswith("2027-06-01T00:00:00")
    job = body["createPipelineJobRequest"]["pipelineJob"]
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "sentiment"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/root"
    assert job["serviceAccount"] == "sa@p.iam.gserviceaccount.com"


def test_vertex_run_submits_a_pipeline_job(vertex, sentiment_spec):
    server, config, buckets = vertex
    line = remote.send(remote.run_call(config, sentiment_spec, "gs://bucket/root"), config)
    assert "pipelineJobs/j1" in line
    method, path, body = server.requests[-1]
    assert path.endswith("/pipelineJobs") and body["displayName"] == "sentiment"
    assert body["serviceAccount"] == "sa@p.iam.gserviceaccount.com"
    assert buckets and buckets[0]["output_artifacts_gcs_dir"] == "gs://bucket/root"


def test_vertex_without_credentials_names_the_fix(monkeypatch, sentiment_spec):
    import google.auth
    import google.auth.exceptions

    def no_credentials(*args, **kwargs):
        raise google.auth.exceptions.DefaultCredentialsError("none")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    config = load_config("sentiment", ["runner.type=vertex", "runner.vertex_project=p", "runner.vertex_region=r"])
    with pytest.raises(ConfigError, match="no Google Cloud credentials.*gcloud auth application-default login"):
        remote.send(remote.run_call(config, sentiment_spec, "gs://bucket/root"), config)


def test_a_refusing_kfp_server_is_one_line_naming_the_call(service, tmp_path):
    def refuse(method, path, body):
        if path.startswith("/apis/v2beta1/healthz"):
            return 200, {"multi_user": False}
        return 400, {"error_message": "pipeline spec is invalid", "code": 3}

    _, host = service(refuse)
    result = run_cli(["run", "--config", "sentiment", *[a for o in KFP for a in ("--set", o)],
                      "--set", f"runner.kfp_host={host}"], timeout=300)
    assert result.returncode == 1
    assert "rnnflow: kfp.Client.create_run_from_pipeline_package failed:" in result.stderr
    assert "Traceback" not in result.stderr
