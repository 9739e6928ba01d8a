"""Tasks plug into the pipeline through one `Task` object each (`base.Task`); the registry of
task types is `rnnflow.pipeline.task_registry` (one line per task)."""

from __future__ import annotations

from rnnflow.components.tasks.base import DataError, InputReport, Task
from rnnflow.pipeline.task_registry import get_task, task_names

__all__ = ["DataError", "InputReport", "Task", "get_task", "task_names"]
