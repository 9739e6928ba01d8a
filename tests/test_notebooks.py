"""Every task notebook, executed end to end with nbclient on a finished run of its built-in config
(the session runs other tests share), as a user would run it; and the repository keeps them with
outputs stripped."""

import glob
import json
import os

import pytest

from conftest import HARNESS

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")
# notebook -> its task, whose harness row's finished run it reads
RUNS = {harness.notebook: task_type for task_type, harness in HARNESS.items()}


def test_there_is_one_notebook_per_task_and_each_is_stored_without_outputs():
    from rnnflow.components.tasks import task_names

    stored = sorted(os.path.basename(p) for p in glob.glob(os.path.join(NOTEBOOKS, "*.ipynb")))
    assert stored == sorted(RUNS)
    assert len(RUNS) == len(task_names())
    for name in stored:
        with open(os.path.join(NOTEBOOKS, name), encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        code = [c for c in cells if c["cell_type"] == "code"]
        assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code), name


@pytest.mark.e2e
@pytest.mark.parametrize("name", sorted(RUNS))
def test_each_notebook_runs_end_to_end_on_a_finished_run(name, task_run, monkeypatch):
    import nbclient
    import nbformat

    run = task_run(RUNS[name])
    monkeypatch.setenv("RNNFLOW_NOTEBOOK_RUN", str(run[0]))
    monkeypatch.setenv("RNNFLOW_NOTEBOOK_STEPS", "4")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    notebook = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": NOTEBOOKS}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the live loss plot and the finished run's curves (and the task's figure)
    last = notebook.cells[-1].outputs
    assert last and any(o.get("data", {}).get("text/plain") or o.get("text") for o in last)
