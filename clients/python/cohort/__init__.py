"""Cohort's Python SDK: remote jobs as asyncio awaitables, and workers.

    import cohort

    async with cohort.connect("127.0.0.1:7070") as client:
        jobs = [await client.submit("images", "images.resize", p) for p in payloads]
        results = await cohort.gather(*jobs)

Clients: connect/Client, RetryPolicy, spec, job_filter, Job, gather, wait, wait_for, shield,
as_completed, FIRST_COMPLETED/FIRST_EXCEPTION/ALL_COMPLETED. Workers: Worker,
TaskContext, TaskError. Settings (TLS, token) as cohortctl's: Settings, cohort.config.
Errors: CohortError, JobError (JobFailed, JobCancelled), ConfigError, and the built-in
TimeoutError.
A synchronous client for scripts is in cohort.sync; raw messages in cohort.pb.
"""

from cohort._retry import RetryPolicy
from cohort.client import Client, connect, job_filter, spec
from cohort.config import ConfigError, Settings
from cohort.errors import CohortError, JobCancelled, JobError, JobFailed
from cohort.jobs import Job, Progress, Shielded
from cohort.waits import (ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, as_completed, gather, shield, state_name,
                          wait, wait_for)
from cohort.worker import TaskContext, TaskError, Worker, WorkerError

__all__ = [
    "ALL_COMPLETED", "Client", "CohortError", "ConfigError", "Settings", "job_filter", "FIRST_COMPLETED", "FIRST_EXCEPTION", "Job", "JobCancelled", "JobError",
    "JobFailed", "Progress", "RetryPolicy", "Shielded", "TaskContext", "TaskError", "Worker", "WorkerError", "as_completed",
    "connect", "gather", "shield", "spec", "state_name", "wait", "wait_for",
]
