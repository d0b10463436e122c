"""Cohort workers in Python: `cohort.Worker`, `@worker.task(kind)`, `TaskContext`.
Run one with `python -m cohort.worker module:worker`."""

from cohort.worker._worker import Worker, WorkerError
from cohort.worker.context import TaskContext, TaskError

__all__ = ["TaskContext", "TaskError", "Worker", "WorkerError"]
