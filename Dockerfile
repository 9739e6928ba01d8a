# The pipeline image that compiled Kubeflow Pipelines v2 / Vertex AI specs name in runner.image.
# It holds exactly requirements/lock.txt and rnnflow, installed the way `make setup` installs them
# (the lock is compiled for Python 3.10 and installs without dependency resolution on 3.11,
# where every native wheel exists); a test checks that it cannot drift from the lock.
#
#   make image IMAGE=gcr.io/PROJECT/rnnflow:TAG     (docker or podman)
#   docker push gcr.io/PROJECT/rnnflow:TAG
#
# Debian 12 (bookworm), glibc 2.36: the platform the lock's wheels are verified on.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /rnnflow
COPY requirements/lock.txt requirements/lock.txt
RUN pip install --no-cache-dir --no-deps --ignore-requires-python --require-hashes -r requirements/lock.txt

COPY setup.py ./
COPY pipeline pipeline
COPY components components
COPY models models
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
    && python -c "import rnnflow.pipeline.cli, tensorflow_text, tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
# pkg:// data paths are read where each step runs, by TFX's own ExampleGen driver too, which
# never imports rnnflow: every interpreter in the image registers the pkg:// filesystem.
RUN echo "import rnnflow.components.ingest.package_filesystem" \
      > "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/rnnflow_pkg_filesystem.pth" \
    && python -c "from tfx.dsl.io import fileio; assert fileio.exists('pkg://tfx/examples/imdb/data')"

# What TFX's KubeflowV2DagRunner puts in every step's container command; the spec sets it too.
ENTRYPOINT ["python", "-m", "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"]
