"""Task registry: each task plugs into the pipeline through one `Task` object.

Adding a task means adding one module that defines a `Task` and one line in
`_TASKS` below; the pipeline assembly in `rnnflow.pipeline.pipeline` does not
change.
"""

from __future__ import annotations

import importlib

from rnnflow.components.tasks.base import DataError, InputReport, Task

# task type -> "module:attribute" of its Task object (imported lazily, so that
# loading a config does not import TensorFlow).
_TASKS = {
    "forecasting": "rnnflow.components.forecasting.task:TASK",
    "language_model": "rnnflow.components.language_model.task:TASK",
    "sequence_labeling": "rnnflow.components.sequence_labeling.task:TASK",
    "text_classification": "rnnflow.components.text_classification.task:TASK",
}


def task_names() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    module_name, _, attribute = _TASKS[name].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


__all__ = ["DataError", "InputReport", "Task", "get_task", "task_names"]
