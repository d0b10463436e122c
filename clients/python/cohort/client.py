"""The asyncio client: one grpc.aio channel to the broker (and one to the scheduler
when it lives elsewhere), and every Cohort API as an async method.

    async with cohort.connect("127.0.0.1:7070") as client:
        job = await client.submit("images", "images.resize", b"...")
        print(await job)
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import AsyncIterator, Iterable, Literal, Mapping, Sequence

import grpc

from cohort import _time, config
from cohort._retry import NO_RETRY, RetryPolicy, Streak
from cohort._proto import broker_pb2, executor_pb2, job_pb2, scheduler_pb2
from cohort._rpc import ServerStream, Unary
from cohort.errors import CohortError
from cohort.jobs import Job

DEFAULT_TARGET = config.DEFAULT_SERVER

Overlap = Literal["skip", "allow", "buffer_one"]
CatchUp = Literal["skip_missed", "run_once", "run_all"]
_OVERLAP = {"skip": scheduler_pb2.OVERLAP_POLICY_SKIP, "allow": scheduler_pb2.OVERLAP_POLICY_ALLOW,
            "buffer_one": scheduler_pb2.OVERLAP_POLICY_BUFFER_ONE}
_CATCH_UP = {"skip_missed": scheduler_pb2.CATCH_UP_POLICY_SKIP_MISSED,
             "run_once": scheduler_pb2.CATCH_UP_POLICY_RUN_ONCE, "run_all": scheduler_pb2.CATCH_UP_POLICY_RUN_ALL}
_ON_DEPENDENCY_FAILURE = {"cancel": job_pb2.DEPENDENCY_FAILURE_POLICY_CANCEL,
                          "fail": job_pb2.DEPENDENCY_FAILURE_POLICY_FAIL}
BulkAction = Literal["cancel", "retry", "delete"]
_BULK_ACTION = {"cancel": broker_pb2.BULK_ACTION_CANCEL, "retry": broker_pb2.BULK_ACTION_RETRY,
                "delete": broker_pb2.BULK_ACTION_DELETE}


def spec(queue: str, kind: str, payload: bytes | str = b"", *, priority: int = 0,
         delay: _time.Seconds | None = None, run_at: datetime.datetime | None = None,
         timeout: _time.Seconds | None = None, deadline: datetime.datetime | None = None,
         max_attempts: int = 0, backoff: job_pb2.Backoff | None = None,
         depends_on: Iterable[Job | str] = (), depends_on_index: Iterable[int] = (),
         on_dependency_failure: Literal["cancel", "fail"] = "cancel",
         labels: Mapping[str, str] | None = None, idempotency_key: str = "", shield: bool = False,
         result_ttl: _time.Seconds | None = None, command: job_pb2.Command | None = None) -> job_pb2.JobSpec:
    """A JobSpec (job.proto documents every field and the broker's rules). A str payload
    is sent as UTF-8; durations are seconds or timedeltas; times are aware datetimes.
    depends_on takes job handles or ids; depends_on_index names other specs of the same
    submit_many batch (a DAG or chord in one call)."""
    if delay is not None and run_at is not None:
        raise ValueError("give delay or run_at, not both")
    result = job_pb2.JobSpec(
        queue=queue, kind=kind, payload=payload.encode() if isinstance(payload, str) else payload,
        priority=priority, max_attempts=max_attempts, labels=dict(labels or {}),
        depends_on=[d.id if isinstance(d, Job) else d for d in depends_on],
        depends_on_index=list(depends_on_index), on_dependency_failure=_ON_DEPENDENCY_FAILURE[on_dependency_failure],
        idempotency_key=idempotency_key, shield=shield)
    if delay is not None:
        result.delay.CopyFrom(_time.duration(delay, "delay"))
    if run_at is not None:
        result.run_at.CopyFrom(_time.timestamp(run_at, "run_at"))
    if timeout is not None:
        result.timeout.CopyFrom(_time.duration(timeout, "timeout"))
    if deadline is not None:
        result.deadline.CopyFrom(_time.timestamp(deadline, "deadline"))
    if result_ttl is not None:
        result.result_ttl.CopyFrom(_time.duration(result_ttl, "result_ttl"))
    if backoff is not None:
        result.backoff.CopyFrom(backoff)
    if command is not None:
        result.command.CopyFrom(command)
    return result


def job_filter(*, states: Iterable[job_pb2.JobState] = (), queue: str = "", kind: str = "", labels: str = "",
               created_after: datetime.datetime | None = None, created_before: datetime.datetime | None = None,
               finished_after: datetime.datetime | None = None, finished_before: datetime.datetime | None = None,
               error_code: str = "") -> broker_pb2.JobFilter:
    """A JobFilter for list_jobs and start_bulk_operation (broker.proto): every argument
    given must hold. labels is a Kubernetes-style selector over JobSpec.labels
    ("team=a,tier in (x,y),!debug"); the time bounds are half-open [after, before) and
    aware datetimes."""
    result = broker_pb2.JobFilter(states=list(states), queue=queue, kind=kind, label_selector=labels,
                                  error_code=error_code)
    for name, value in [("created_after", created_after), ("created_before", created_before),
                        ("finished_after", finished_after), ("finished_before", finished_before)]:
        if value is not None:
            getattr(result, name).CopyFrom(_time.timestamp(value, name))
    return result


class Client:
    """A connection to Cohort, for the event loop it was created on.

    target is the broker, scheduler_target the scheduler (default: the broker's address,
    which is where cohort-dev serves it). settings carries TLS and the bearer token
    (cohort.config.Settings). Whatever is not given comes from the environment and the
    config file, as for cohortctl (cohort.config: COHORT_SERVER, COHORT_TLS_CA, ...,
    then $COHORT_CONFIG or ~/.config/cohort/config); 127.0.0.1:7070 plaintext without
    any. credentials (gRPC channel credentials) replace the TLS the settings give.
    ConfigError for a malformed config file or an unreadable file it names.

    rpc_timeout bounds every call that is not a wait (waits are bounded only by their
    own timeout). Use as `async with`, or call close().

    target may list a broker group's replicas, comma-separated ("127.0.0.1:7071,
    127.0.0.1:7072,127.0.0.1:7073"): one channel connects to the one that listens, the
    leader, and follows it to the next. `retry` (cohort.RetryPolicy, default 30 s of
    backoff) says how long a call that is safe to make twice rides out an unreachable
    broker before raising CohortError UNAVAILABLE: reads, waits (re-issued for what is
    left of their timeout), idempotent writes, and a Submit whose every spec has an
    idempotency key. With idempotent_submit=True, submit/submit_many give every spec
    without a key a fresh random one (once per call), so that a Submit, too, is retried
    across a failover without creating a job twice.
    """

    def __init__(self, target: str | None = None, *, scheduler_target: str | None = None,
                 settings: config.Settings | None = None, credentials: grpc.ChannelCredentials | None = None,
                 options: Sequence[tuple[str, object]] = (), rpc_timeout: float = 30.0,
                 retry: RetryPolicy | None = None, idempotent_submit: bool = False) -> None:
        given = settings or config.Settings()
        resolved = config.resolve(dataclasses.replace(given, server=target or given.server,
                                                      scheduler=scheduler_target or given.scheduler))
        self.target = resolved.server or DEFAULT_TARGET
        self.scheduler_target = resolved.scheduler or self.target
        self.rpc_timeout = rpc_timeout
        self.retry = retry or RetryPolicy()
        self.idempotent_submit = idempotent_submit
        self._channel = config.open_channel(self.target, resolved, credentials, options)
        self._scheduler_channel = (self._channel if self.scheduler_target == self.target
                                   else config.open_channel(self.scheduler_target, resolved, credentials, options))
        self._broker = _BrokerMethods(self._channel)
        self._scheduler = _SchedulerMethods(self._scheduler_channel)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channels; calls in flight end with CANCELLED."""
        await self._channel.close()
        if self._scheduler_channel is not self._channel:
            await self._scheduler_channel.close()

    # ---- jobs ----

    def job(self, job_id: str) -> Job:
        """A handle on an existing job (no RPC)."""
        return Job(self, job_id)

    async def submit(self, queue: str, kind: str, payload: bytes | str = b"", **options: object) -> Job:
        """Submits one job (Submit, durable before it returns) and returns its handle;
        `await` the handle for its result. options are spec()'s keyword arguments.
        An idempotency_key that matches an existing job returns that job's handle."""
        return (await self.submit_many([spec(queue, kind, payload, **options)]))[0]  # type: ignore[arg-type]

    async def submit_many(self, specs: Iterable[job_pb2.JobSpec]) -> list[Job]:
        """Submits a batch, all or nothing (Submit), and returns the handles in order.
        Retried on UNAVAILABLE only when every spec has an idempotency key (given, or
        generated with idempotent_submit=True): the broker then returns the jobs a lost
        first try created instead of creating them again."""
        request = broker_pb2.SubmitRequest(jobs=list(specs))
        if self.idempotent_submit:
            for one in request.jobs:
                if not one.idempotency_key:
                    one.idempotency_key = f"sdk-{uuid.uuid4().hex}"
        keyed = bool(request.jobs) and all(one.idempotency_key for one in request.jobs)
        response = await self._broker.Submit(request, self.rpc_timeout, self.retry if keyed else NO_RETRY)
        return [Job(self, job_id) for job_id in response.job_ids]

    async def get_job(self, job_id: str) -> job_pb2.Job:
        """GetJob: the job, payload and result included. CohortError NOT_FOUND after its
        result_ttl."""
        return (await self._broker.GetJob(broker_pb2.GetJobRequest(job_id=job_id), self.rpc_timeout, self.retry)).job

    async def list_jobs(self, filter: broker_pb2.JobFilter | None = None, *, queue: str = "",
                        states: Iterable[job_pb2.JobState] = (), newest_first: bool = False,
                        page_size: int = 0) -> AsyncIterator[job_pb2.Job]:
        """Every job matching filter (job_filter()) and queue/states (without payload and
        result), oldest first or newest_first, page by page (ListJobs: a job appears at
        most once). CohortError INVALID_ARGUMENT for a malformed filter."""
        request = broker_pb2.ListJobsRequest(queue=queue, states=list(states), filter=filter,
                                             newest_first=newest_first, page_size=page_size)
        while True:
            page = await self._broker.ListJobs(request, self.rpc_timeout, self.retry)
            for job in page.jobs:
                yield job
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    # ---- operations ----

    async def retry_job(self, job_id: str, *, expected_attempt: int = 0) -> broker_pb2.RetryJobResponse:
        """RetryJob: runs a FAILED or CANCELLED job again (same id, a new budget of
        attempts). .retried is False when the job was already queued or running again,
        or when expected_attempt (if > 0) no longer equals Job.attempt; .job is the job
        after the call. CohortError FAILED_PRECONDITION for a SUCCEEDED job."""
        request = broker_pb2.RetryJobRequest(job_id=job_id, expected_attempt=expected_attempt)
        return await self._broker.RetryJob(request, self.rpc_timeout)

    async def delete_job(self, job_id: str) -> job_pb2.JobState:
        """DeleteJob: removes a job that is not RUNNING for good; returns the state it
        had. CohortError FAILED_PRECONDITION for a RUNNING job or one others depend on,
        NOT_FOUND for an unknown or already deleted id."""
        return (await self._broker.DeleteJob(broker_pb2.DeleteJobRequest(job_id=job_id), self.rpc_timeout)).state

    async def start_bulk_operation(self, action: BulkAction, filter: broker_pb2.JobFilter, *, dry_run: bool = False,
                                   match_all: bool = False, request_id: str = "") -> broker_pb2.BulkOperation:
        """StartBulkOperation: cancels, retries or deletes every job matching filter
        (job_filter()), applied by the broker in the background; returns its durable
        record (follow it with get_bulk_operation). dry_run only counts (.matched). An
        empty filter needs match_all=True; request_id makes the call idempotent."""
        request = broker_pb2.StartBulkOperationRequest(action=_BULK_ACTION[action], filter=filter, dry_run=dry_run,
                                                       match_all=match_all, request_id=request_id)
        retry = self.retry if request_id else NO_RETRY
        return (await self._broker.StartBulkOperation(request, self.rpc_timeout, retry)).operation

    async def get_bulk_operation(self, operation_id: str) -> broker_pb2.BulkOperation:
        request = broker_pb2.GetBulkOperationRequest(id=operation_id)
        return (await self._broker.GetBulkOperation(request, self.rpc_timeout, self.retry)).operation

    async def list_bulk_operations(self) -> list[broker_pb2.BulkOperation]:
        """The operations the broker keeps, newest first."""
        request = broker_pb2.ListBulkOperationsRequest()
        return list((await self._broker.ListBulkOperations(request, self.rpc_timeout, self.retry)).operations)

    async def watch(self, after_sequence: int = 0) -> AsyncIterator[job_pb2.JobEvent]:
        """The event log (Watch): every durable event after after_sequence, then live,
        without end; leave the loop to stop. Resume from the last event.sequence you
        handled. CohortError FAILED_PRECONDITION when retention has dropped events you
        asked for, OUT_OF_RANGE for a sequence beyond the log.

        A broker failover ends the stream UNAVAILABLE: it is re-opened after the last
        event yielded, as the retry policy allows (each event starts its budget again).
        """
        request = broker_pb2.WatchRequest(after_sequence=after_sequence)
        streak = Streak(self.retry)
        while True:
            streak.begin()
            try:
                async for response in self._broker.Watch(request, None):
                    streak.succeeded()
                    for event in response.events:
                        yield event
                        request.after_sequence = event.sequence
                return
            except CohortError as e:
                await streak.failed(e)

    # ---- queues and executors ----

    async def list_queues(self) -> list[broker_pb2.QueueInfo]:
        """Every known queue with its depth, running count and limits, by name."""
        return list((await self._broker.ListQueues(broker_pb2.ListQueuesRequest(), self.rpc_timeout, self.retry)).queues)

    async def create_queue(self, queue: str, *, paused: bool = False, max_concurrency: int | None = None,
                           max_rate: float | None = None, weight: int | None = None) -> bool:
        """CreateQueue, optionally paused and with limits; False when the queue already
        existed (it is left as it was)."""
        request = broker_pb2.CreateQueueRequest(queue=queue, paused=paused,
                                                limits=_limits(max_concurrency, max_rate, weight))
        return not (await self._broker.CreateQueue(request, self.rpc_timeout)).already_existed

    async def delete_queue(self, queue: str, *, delete_jobs: bool = False) -> int:
        """DeleteQueue; with delete_jobs its jobs go too (none may be RUNNING). Returns how
        many jobs were deleted. CohortError FAILED_PRECONDITION for a queue holding jobs
        without delete_jobs, NOT_FOUND for an unknown queue."""
        request = broker_pb2.DeleteQueueRequest(queue=queue, delete_jobs=delete_jobs)
        return int((await self._broker.DeleteQueue(request, self.rpc_timeout)).deleted_jobs)

    async def pause_queue(self, queue: str) -> None:
        """Stops dispatch from the queue (idempotent; running jobs carry on)."""
        await self._broker.PauseQueue(broker_pb2.PauseQueueRequest(queue=queue), self.rpc_timeout, self.retry)

    async def resume_queue(self, queue: str) -> None:
        await self._broker.ResumeQueue(broker_pb2.ResumeQueueRequest(queue=queue), self.rpc_timeout, self.retry)

    async def set_queue_limits(self, queue: str, *, max_concurrency: int | None = None,
                               max_rate: float | None = None, weight: int | None = None) -> broker_pb2.QueueLimits:
        """Changes the limits given (None keeps a limit; 0 means unlimited/default);
        returns the queue's limits after the change."""
        request = broker_pb2.SetQueueLimitsRequest(queue=queue, limits=_limits(max_concurrency, max_rate, weight))
        return (await self._broker.SetQueueLimits(request, self.rpc_timeout, self.retry)).limits

    async def list_executors(self) -> list[broker_pb2.ExecutorInfo]:
        """The executors and workers connected now, by id."""
        response = await self._broker.ListExecutors(broker_pb2.ListExecutorsRequest(), self.rpc_timeout, self.retry)
        return list(response.executors)

    # ---- schedules (the scheduler's API) ----

    async def create_schedule(self, schedule_id: str, job: job_pb2.JobSpec, *,
                              every: _time.Seconds | None = None, cron: str | None = None, time_zone: str = "",
                              overlap: Overlap = "skip", catch_up: CatchUp = "run_once",
                              catch_up_limit: int = 0) -> scheduler_pb2.Schedule:
        """Creates a schedule that submits `job` (a spec() template) every `every`
        seconds or on a 5-field `cron` expression in `time_zone` (IANA; UTC if empty)."""
        request = scheduler_pb2.CreateScheduleRequest(
            schedule_id=schedule_id, spec=_schedule_spec(job, every, cron, time_zone, overlap, catch_up, catch_up_limit))
        return (await self._scheduler.CreateSchedule(request, self.rpc_timeout)).schedule

    async def update_schedule(self, schedule_id: str, job: job_pb2.JobSpec, *,
                              every: _time.Seconds | None = None, cron: str | None = None, time_zone: str = "",
                              overlap: Overlap = "skip", catch_up: CatchUp = "run_once",
                              catch_up_limit: int = 0) -> scheduler_pb2.Schedule:
        """Replaces a schedule's spec (arguments as create_schedule)."""
        request = scheduler_pb2.UpdateScheduleRequest(
            schedule_id=schedule_id, spec=_schedule_spec(job, every, cron, time_zone, overlap, catch_up, catch_up_limit))
        return (await self._scheduler.UpdateSchedule(request, self.rpc_timeout)).schedule

    async def get_schedule(self, schedule_id: str) -> scheduler_pb2.Schedule:
        request = scheduler_pb2.GetScheduleRequest(schedule_id=schedule_id)
        return (await self._scheduler.GetSchedule(request, self.rpc_timeout, self.retry)).schedule

    async def list_schedules(self, *, page_size: int = 0) -> AsyncIterator[scheduler_pb2.Schedule]:
        """Every schedule in id order, page by page."""
        request = scheduler_pb2.ListSchedulesRequest(page_size=page_size)
        while True:
            page = await self._scheduler.ListSchedules(request, self.rpc_timeout, self.retry)
            for schedule in page.schedules:
                yield schedule
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token

    async def delete_schedule(self, schedule_id: str) -> None:
        await self._scheduler.DeleteSchedule(scheduler_pb2.DeleteScheduleRequest(schedule_id=schedule_id),
                                             self.rpc_timeout)

    async def pause_schedule(self, schedule_id: str) -> scheduler_pb2.Schedule:
        request = scheduler_pb2.PauseScheduleRequest(schedule_id=schedule_id)
        return (await self._scheduler.PauseSchedule(request, self.rpc_timeout)).schedule

    async def resume_schedule(self, schedule_id: str) -> scheduler_pb2.Schedule:
        request = scheduler_pb2.ResumeScheduleRequest(schedule_id=schedule_id)
        return (await self._scheduler.ResumeSchedule(request, self.rpc_timeout)).schedule

    async def trigger_schedule(self, schedule_id: str) -> Job:
        """Submits one job from the schedule's template now; returns its handle."""
        request = scheduler_pb2.TriggerScheduleRequest(schedule_id=schedule_id)
        return Job(self, (await self._scheduler.TriggerSchedule(request, self.rpc_timeout)).job_id)


def _limits(max_concurrency: int | None, max_rate: float | None, weight: int | None) -> broker_pb2.QueueLimits:
    limits = broker_pb2.QueueLimits()
    if max_concurrency is not None:
        limits.max_concurrency = max_concurrency
    if max_rate is not None:
        limits.max_rate = max_rate
    if weight is not None:
        limits.weight = weight
    return limits


def _schedule_spec(job: job_pb2.JobSpec, every: _time.Seconds | None, cron: str | None, time_zone: str,
                   overlap: Overlap, catch_up: CatchUp, catch_up_limit: int) -> scheduler_pb2.ScheduleSpec:
    if (every is None) == (cron is None):
        raise ValueError("give exactly one of every= and cron=")
    result = scheduler_pb2.ScheduleSpec(job=job, overlap_policy=_OVERLAP[overlap], catch_up_policy=_CATCH_UP[catch_up],
                                        catch_up_limit=catch_up_limit)
    if every is not None:
        result.interval.CopyFrom(_time.duration(every, "every"))
    else:
        assert cron is not None
        result.cron.expression = cron
        result.cron.time_zone = time_zone
    return result


def connect(target: str | None = None, *, scheduler_target: str | None = None,
            settings: config.Settings | None = None, credentials: grpc.ChannelCredentials | None = None,
            options: Sequence[tuple[str, object]] = (), rpc_timeout: float = 30.0,
            retry: RetryPolicy | None = None, idempotent_submit: bool = False) -> Client:
    """A Client (see its docstring); use as `async with cohort.connect(...) as client`.
    Connecting is lazy: the first call that cannot reach the broker fails UNAVAILABLE
    (after the retry policy's deadline for a call that is retried)."""
    return Client(target, scheduler_target=scheduler_target, settings=settings, credentials=credentials,
                  options=options, rpc_timeout=rpc_timeout, retry=retry, idempotent_submit=idempotent_submit)


class _BrokerMethods:
    """The Broker service's client methods (broker.proto)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def unary(name: str, response: type) -> Unary:  # type: ignore[type-arg]
            return Unary(channel, "Broker", name, response)

        self.Submit: Unary[broker_pb2.SubmitRequest, broker_pb2.SubmitResponse] = unary(
            "Submit", broker_pb2.SubmitResponse)
        self.GetJob: Unary[broker_pb2.GetJobRequest, broker_pb2.GetJobResponse] = unary(
            "GetJob", broker_pb2.GetJobResponse)
        self.ListJobs: Unary[broker_pb2.ListJobsRequest, broker_pb2.ListJobsResponse] = unary(
            "ListJobs", broker_pb2.ListJobsResponse)
        self.CancelJob: Unary[broker_pb2.CancelJobRequest, broker_pb2.CancelJobResponse] = unary(
            "CancelJob", broker_pb2.CancelJobResponse)
        self.Gather: Unary[broker_pb2.GatherRequest, broker_pb2.GatherResponse] = unary(
            "Gather", broker_pb2.GatherResponse)
        self.Wait: Unary[broker_pb2.WaitRequest, broker_pb2.WaitResponse] = unary("Wait", broker_pb2.WaitResponse)
        self.WaitFor: Unary[broker_pb2.WaitForRequest, broker_pb2.WaitForResponse] = unary(
            "WaitFor", broker_pb2.WaitForResponse)
        self.AsCompleted: ServerStream[broker_pb2.AsCompletedRequest, broker_pb2.AsCompletedResponse] = ServerStream(
            channel, "Broker", "AsCompleted", broker_pb2.AsCompletedResponse)
        self.Watch: ServerStream[broker_pb2.WatchRequest, broker_pb2.WatchResponse] = ServerStream(
            channel, "Broker", "Watch", broker_pb2.WatchResponse)
        self.ListQueues: Unary[broker_pb2.ListQueuesRequest, broker_pb2.ListQueuesResponse] = unary(
            "ListQueues", broker_pb2.ListQueuesResponse)
        self.PauseQueue: Unary[broker_pb2.PauseQueueRequest, broker_pb2.PauseQueueResponse] = unary(
            "PauseQueue", broker_pb2.PauseQueueResponse)
        self.ResumeQueue: Unary[broker_pb2.ResumeQueueRequest, broker_pb2.ResumeQueueResponse] = unary(
            "ResumeQueue", broker_pb2.ResumeQueueResponse)
        self.SetQueueLimits: Unary[broker_pb2.SetQueueLimitsRequest, broker_pb2.SetQueueLimitsResponse] = unary(
            "SetQueueLimits", broker_pb2.SetQueueLimitsResponse)
        self.RetryJob: Unary[broker_pb2.RetryJobRequest, broker_pb2.RetryJobResponse] = unary(
            "RetryJob", broker_pb2.RetryJobResponse)
        self.DeleteJob: Unary[broker_pb2.DeleteJobRequest, broker_pb2.DeleteJobResponse] = unary(
            "DeleteJob", broker_pb2.DeleteJobResponse)
        self.StartBulkOperation: Unary[broker_pb2.StartBulkOperationRequest,
                                       broker_pb2.StartBulkOperationResponse] = unary(
            "StartBulkOperation", broker_pb2.StartBulkOperationResponse)
        self.GetBulkOperation: Unary[broker_pb2.GetBulkOperationRequest, broker_pb2.GetBulkOperationResponse] = unary(
            "GetBulkOperation", broker_pb2.GetBulkOperationResponse)
        self.ListBulkOperations: Unary[broker_pb2.ListBulkOperationsRequest,
                                       broker_pb2.ListBulkOperationsResponse] = unary(
            "ListBulkOperations", broker_pb2.ListBulkOperationsResponse)
        self.CreateQueue: Unary[broker_pb2.CreateQueueRequest, broker_pb2.CreateQueueResponse] = unary(
            "CreateQueue", broker_pb2.CreateQueueResponse)
        self.DeleteQueue: Unary[broker_pb2.DeleteQueueRequest, broker_pb2.DeleteQueueResponse] = unary(
            "DeleteQueue", broker_pb2.DeleteQueueResponse)
        self.ListExecutors: Unary[broker_pb2.ListExecutorsRequest, broker_pb2.ListExecutorsResponse] = unary(
            "ListExecutors", broker_pb2.ListExecutorsResponse)
        # The worker's stream (executor.proto); used by cohort.Worker.
        self.Connect = channel.stream_stream(
            "/cohort.v1.Broker/Connect", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=executor_pb2.BrokerMessage.FromString)


class _SchedulerMethods:
    """The Scheduler service's client methods (scheduler.proto)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def unary(name: str, response: type) -> Unary:  # type: ignore[type-arg]
            return Unary(channel, "Scheduler", name, response)

        self.CreateSchedule: Unary[scheduler_pb2.CreateScheduleRequest, scheduler_pb2.CreateScheduleResponse] = unary(
            "CreateSchedule", scheduler_pb2.CreateScheduleResponse)
        self.GetSchedule: Unary[scheduler_pb2.GetScheduleRequest, scheduler_pb2.GetScheduleResponse] = unary(
            "GetSchedule", scheduler_pb2.GetScheduleResponse)
        self.ListSchedules: Unary[scheduler_pb2.ListSchedulesRequest, scheduler_pb2.ListSchedulesResponse] = unary(
            "ListSchedules", scheduler_pb2.ListSchedulesResponse)
        self.UpdateSchedule: Unary[scheduler_pb2.UpdateScheduleRequest, scheduler_pb2.UpdateScheduleResponse] = unary(
            "UpdateSchedule", scheduler_pb2.UpdateScheduleResponse)
        self.DeleteSchedule: Unary[scheduler_pb2.DeleteScheduleRequest, scheduler_pb2.DeleteScheduleResponse] = unary(
            "DeleteSchedule", scheduler_pb2.DeleteScheduleResponse)
        self.PauseSchedule: Unary[scheduler_pb2.PauseScheduleRequest, scheduler_pb2.PauseScheduleResponse] = unary(
            "PauseSchedule", scheduler_pb2.PauseScheduleResponse)
        self.ResumeSchedule: Unary[scheduler_pb2.ResumeScheduleRequest, scheduler_pb2.ResumeScheduleResponse] = unary(
            "ResumeSchedule", scheduler_pb2.ResumeScheduleResponse)
        self.TriggerSchedule: Unary[scheduler_pb2.TriggerScheduleRequest,
                                    scheduler_pb2.TriggerScheduleResponse] = unary(
            "TriggerSchedule", scheduler_pb2.TriggerScheduleResponse)
