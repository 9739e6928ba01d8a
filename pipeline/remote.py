"""Runs and schedules on Kubeflow Pipelines (`runner.type: kubeflow_v2`) and Vertex AI
Pipelines (`runner.type: vertex`), through their own clients: kfp's `Client` and
google-cloud-aiplatform's `PipelineJob`. Both take the spec `kubeflow.compile_kubeflow_v2`
writes, as YAML (the bare PipelineSpec, the only form kfp's client uploads); a schedule compiles it once, and every scheduled run reads the data of its night
(the spec holds no data facts).

Every call is first described as a `Call` (client, method, arguments), which is what
`--dry-run` prints and what `submit` then sends.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import urllib.error
import urllib.request
from typing import Any

from rnnflow.pipeline.config import ConfigError, PipelineConfig

KFP_HEALTHZ_PATH = "/apis/v2beta1/healthz"
# Cron fields: name, lowest, highest value; names allowed for months and weekdays.
_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
                ("day of week", 0, 7))
_CRON_NAMES = {3: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
               4: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]}
_CRON_ITEM = re.compile(r"^(?P<range>\*|\?|[0-9A-Za-z]+(?:-[0-9A-Za-z]+)?)(?:/(?P<step>\d+))?$")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a pipeline runs: a 5-field cron (minute hour day-of-month month day-of-week)."""
    cron: str
    time_zone: str | None = None  # IANA name; Vertex only (KFP schedules run in the cluster's UTC)
    start_time: str | None = None  # RFC 3339
    end_time: str | None = None
    max_runs: int | None = None  # Vertex only
    catchup: bool = False  # KFP: backfill intervals missed while paused


@dataclasses.dataclass(frozen=True)
class Call:
    """One client call: printed by --dry-run, made by `send`."""
    client: str
    method: str
    arguments: dict[str, Any]

    def describe(self) -> str:
        return json.dumps({"client": self.client, "method": self.method, "arguments": self.arguments},
                          indent=2, default=str)


def check_cron(cron: str) -> str:
    """The cron normalized to single spaces, or a ConfigError naming the bad field."""
    fields = cron.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ConfigError(f"--cron '{cron}': expected 5 fields (minute hour day-of-month month "
                          f"day-of-week), e.g. '0 3 * * *', got {len(fields)}")
    for index, (field, (name, low, high)) in enumerate(zip(fields, _CRON_FIELDS)):
        for item in field.split(","):
            match = _CRON_ITEM.match(item)
            if not match:
                raise ConfigError(f"--cron '{cron}': {name} field '{field}' is not a cron expression")
            if match["range"] == "?" and index not in (2, 4):
                raise ConfigError(f"--cron '{cron}': '?' is only allowed for day of month or day of week")
            if match["step"] is not None and int(match["step"]) == 0:
                raise ConfigError(f"--cron '{cron}': {name} field '{field}' has step 0")
            for value in (match["range"].split("-") if match["range"] not in ("*", "?") else []):
                number = _cron_value(value, index)
                if number is None or not low <= number <= high:
                    raise ConfigError(f"--cron '{cron}': {name} field '{field}': '{value}' is out of "
                                      f"range {low}-{high}")
    return " ".join(fields)


def _cron_value(value: str, index: int) -> int | None:
    if value.isdigit():
        return int(value)
    names = _CRON_NAMES.get(index, [])
    if value.upper() in names:
        return names.index(value.upper()) + (1 if index == 3 else 0)
    return None


def check_schedule(schedule: Schedule, runner_type: str) -> Schedule:
    cron = check_cron(schedule.cron)
    for field in ("start_time", "end_time"):
        value = getattr(schedule, field)
        if value is not None:
            try:
                parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"--{field.replace('_', '-')} '{value}': not an RFC 3339 time such as "
                                  "2026-12-01T03:00:00Z") from None
            if parsed.tzinfo is None:
                raise ConfigError(f"--{field.replace('_', '-')} '{value}': give a time zone offset "
                                  "(e.g. Z or +01:00)")
    if schedule.start_time and schedule.end_time and _time(schedule.end_time) <= _time(schedule.start_time):
        raise ConfigError(f"--end-time {schedule.end_time} is not after --start-time {schedule.start_time}")
    if schedule.time_zone is not None:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(schedule.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"--time-zone '{schedule.time_zone}': not an IANA time zone such as "
                              "Europe/Berlin") from None
    if runner_type == "kubeflow_v2":
        if schedule.time_zone:
            raise ConfigError("--time-zone: Kubeflow Pipelines runs schedules in UTC; convert the cron, "
                              "or use runner.type: vertex")
        if schedule.max_runs is not None:
            raise ConfigError("--max-runs: Kubeflow Pipelines has no run count limit; use --end-time")
    elif schedule.catchup:
        raise ConfigError("--catchup: Vertex AI schedules do not backfill missed runs")
    return dataclasses.replace(schedule, cron=cron)


def _time(value: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------
# The calls.
# ---------------------------------------------------------------------------

def run_call(config: PipelineConfig, spec_path: str, pipeline_root: str) -> Call:
    """Submits one run of the compiled spec."""
    runner = config.runner
    if runner.type == "kubeflow_v2":
        return Call("kfp.Client", "create_run_from_pipeline_package", {
            "pipeline_file": spec_path, "pipeline_root": pipeline_root, "arguments": {}, "run_name": config.name,
            "experiment_name": runner.kfp_experiment, "enable_caching": runner.enable_cache,
            "service_account": runner.service_account})
    return Call("aiplatform.PipelineJob", "submit", {
        **_vertex_job(config, spec_path, pipeline_root), "service_account": runner.service_account})


def schedule_call(config: PipelineConfig, spec_path: str, pipeline_root: str, schedule: Schedule) -> Call:
    """Creates a recurring run (KFP) or a PipelineJob schedule (Vertex)."""
    runner = config.runner
    if runner.type == "kubeflow_v2":
        return Call("kfp.Client", "create_recurring_run", {
            "experiment_name": runner.kfp_experiment, "job_name": config.name,
            "pipeline_package_path": spec_path, "pipeline_root": pipeline_root,
            # KFP's cron has a leading seconds field.
            "cron_expression": f"0 {schedule.cron}", "max_concurrency": 1,
            "no_catchup": not schedule.catchup, "start_time": schedule.start_time,
            "end_time": schedule.end_time, "params": {}, "enable_caching": runner.enable_cache,
            "service_account": runner.service_account})
    cron = f"TZ={schedule.time_zone} {schedule.cron}" if schedule.time_zone else schedule.cron
    return Call("aiplatform.PipelineJob", "create_schedule", {
        **_vertex_job(config, spec_path, pipeline_root), "cron": cron,
        "schedule_display_name": config.name, "max_concurrent_run_count": 1,
        "max_run_count": schedule.max_runs, "start_time": schedule.start_time,
        "end_time": schedule.end_time, "service_account": runner.service_account})


def _vertex_job(config: PipelineConfig, spec_path: str, pipeline_root: str) -> dict:
    runner = config.runner
    return {"project": runner.vertex_project, "location": runner.vertex_region,
            "display_name": config.name, "template_path": spec_path, "pipeline_root": pipeline_root,
            "enable_caching": runner.enable_cache}


def send(call: Call, config: PipelineConfig) -> str:
    """Makes the call; returns a line naming what was created."""
    if call.client == "kfp.Client":
        return _send_kfp(call, config.runner.kfp_host)
    return _send_vertex(call, config.runner.vertex_api_endpoint)


def check_reachable(host: str, timeout: float = 10.0) -> None:
    """A ConfigError naming runner.kfp_host when the KFP API does not answer (kfp's own client
    would retry for half a minute and then print a stack trace)."""
    url = host.rstrip("/") + KFP_HEALTHZ_PATH
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            pass
    except urllib.error.HTTPError as e:
        if e.code in (401, 403):
            raise ConfigError(f"runner.kfp_host: {host} refused the request ({e.code} {e.reason}); "
                              "authenticate (e.g. a port-forward, or an IAP/Dex token)") from None
        raise ConfigError(f"runner.kfp_host: {url} answered {e.code} {e.reason}; is this the KFP API "
                          "(ml-pipeline) endpoint?") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ConfigError(f"runner.kfp_host: cannot reach {host}: {reason}") from None


def _send_kfp(call: Call, host: str) -> str:
    import kfp

    check_reachable(host)
    client = kfp.Client(host=host)
    arguments = dict(call.arguments)
    if call.method == "create_run_from_pipeline_package":
        result = client.create_run_from_pipeline_package(**arguments)
        return f"submitted run {result.run_id} to {host}"
    # kfp returns the experiment of that name, creating it when there is none.
    experiment = client.create_experiment(arguments.pop("experiment_name"))
    result = client.create_recurring_run(experiment_id=experiment.experiment_id, **arguments)
    return f"created recurring run {result.recurring_run_id} ({arguments['cron_expression']}) on {host}"


def _send_vertex(call: Call, api_endpoint: str | None) -> str:
    import google.auth
    from google.cloud import aiplatform

    try:
        google.auth.default()
    except google.auth.exceptions.DefaultCredentialsError:
        raise ConfigError("runner.vertex_project: no Google Cloud credentials on this machine; run "
                          "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS") from None
    arguments = dict(call.arguments)
    project, location = arguments.pop("project"), arguments.pop("location")
    # REST rather than gRPC: one transport, through proxies, for both endpoints.
    aiplatform.init(project=project, location=location, api_endpoint=api_endpoint, api_transport="rest")
    job_keys = ("display_name", "template_path", "pipeline_root", "enable_caching")
    job = aiplatform.PipelineJob(project=project, location=location,
                                 **{k: arguments.pop(k) for k in job_keys})
    if call.method == "submit":
        job.submit(**arguments)
        return f"submitted Vertex AI pipeline job {job.resource_name}"
    display_name = arguments.pop("schedule_display_name")
    schedule = job.create_schedule(display_name=display_name, **arguments)
    return f"created Vertex AI schedule {schedule.resource_name} ({arguments['cron']})"
