"""Compiles the same pipeline for Kubeflow Pipelines v2 / Vertex AI Pipelines (TFX is imported
only when compiling, so the checks here answer fast)."""

from __future__ import annotations

import os

from rnnflow.pipeline.config import ConfigError, PipelineConfig, portable_path


def serving_dir(config: PipelineConfig, pipeline_root: str) -> str:
    """Where the Pusher writes: `serving.base_dir` as given when it is absolute or a URI,
    else under the pipeline root; then the model name."""
    base = config.serving.base_dir
    if not (os.path.isabs(base) or "://" in base):
        base = f"{pipeline_root.rstrip('/')}/{base}"
    return f"{base.rstrip('/')}/{config.serving.model_name or config.name}"


def pipeline_root_for(config: PipelineConfig, given: str | None) -> str:
    """--pipeline-root, else runner.pipeline_root: a URI (or a path mounted in the image)."""
    root = given or config.runner.pipeline_root
    if not root:
        raise ConfigError("runner.pipeline_root: required for Kubeflow/Vertex (or pass --pipeline-root), "
                          "e.g. gs://BUCKET/rnnflow")
    return portable_path(root, "--pipeline-root" if given else "runner.pipeline_root")


def require_image(config: PipelineConfig) -> None:
    """runner.image names the image every step of a compiled spec runs; a ConfigError without it."""
    if not config.runner.image:
        raise ConfigError("runner.image: required to compile for Kubeflow; the pipeline image built "
                          "by `make image` from the Dockerfile (README: \"Run it on Kubeflow / Vertex\")")


def compile_kubeflow_v2(config: PipelineConfig, pipeline_root: str, output_path: str) -> str:
    """Writes the pipeline spec JSON; the image must have rnnflow and tensorflow-text installed."""
    from tfx import v1 as tfx

    from rnnflow.pipeline.pipeline import create_pipeline

    require_image(config)
    # No input check here: the data may not be readable from this machine, and its facts
    # belong to each run; the ExampleGen checks the files of the span it ingests.
    pipeline = create_pipeline(config, pipeline_root, serving_dir(config, pipeline_root), portable=True)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=config.runner.image),
        output_dir=os.path.dirname(os.path.abspath(output_path)),
        output_filename=os.path.basename(output_path))
    runner.run(pipeline, write_out=True)
    return os.path.abspath(output_path)
