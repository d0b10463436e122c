"""Load that gives every panel of the dashboard something to show, driven over gRPC
through the generated Python stubs (protos.cohort.v1.*).

Queues: the test's executor serves only "dashboard"; "dashboard.backlog" is served by
no one (its jobs stay QUEUED: depth and oldest age); "dashboard.lease" is served by a
fake executor that takes one attempt and vanishes (a lost lease, redelivered).
Every function raises AssertionError when the system does not do what it should.
"""

import queue
import time

import grpc
from google.protobuf import duration_pb2

from protos.cohort.v1 import broker_pb2, broker_pb2_grpc, executor_pb2, job_pb2
from protos.cohort.v1 import scheduler_pb2, scheduler_pb2_grpc

QUEUE = "dashboard"
BACKLOG_QUEUE = "dashboard.backlog"
LEASE_QUEUE = "dashboard.lease"
_RPC_TIMEOUT = 30  # seconds, for every call


def channel(address):
    """An insecure channel straight to `address`, whatever *_proxy variables say."""
    return grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])


def _seconds(s):
    return duration_pb2.Duration(seconds=int(s), nanos=int((s - int(s)) * 1e9))


def _job(kind, payload=b"", queue_name=QUEUE, argv=None, **fields):
    spec = job_pb2.JobSpec(queue=queue_name, kind=kind, payload=payload, **fields)
    if argv:
        spec.command.argv.extend(argv)
    return spec


def _await(condition, what, timeout=30.0):
    """Polls `condition()` until it returns a truthy value, which it returns; raises
    AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def run_jobs_to_the_end(broker):
    """Jobs of every kind on QUEUE, gathered to their end: echo, noop, sleep and exec
    of /usr/bin/cat succeed; builtin.fail and exec of /usr/bin/false fail."""
    expected = [
        *[(_job("builtin.echo", b"hello"), job_pb2.JOB_STATE_SUCCEEDED)] * 8,
        *[(_job("builtin.noop"), job_pb2.JOB_STATE_SUCCEEDED)] * 4,
        *[(_job("builtin.sleep", b"20ms"), job_pb2.JOB_STATE_SUCCEEDED)] * 3,
        *[(_job("builtin.fail", b"planned failure"), job_pb2.JOB_STATE_FAILED)] * 2,
        *[(_job("exec", b"from stdin\n", argv=["/usr/bin/cat"]), job_pb2.JOB_STATE_SUCCEEDED)] * 2,
        (_job("exec", argv=["/usr/bin/false"]), job_pb2.JOB_STATE_FAILED),
    ]
    ids = broker.Submit(broker_pb2.SubmitRequest(jobs=[spec for spec, _ in expected]), timeout=_RPC_TIMEOUT).job_ids
    outcomes = broker.Gather(
        broker_pb2.GatherRequest(job_ids=ids, return_exceptions=True, timeout=_seconds(_RPC_TIMEOUT)),
        timeout=_RPC_TIMEOUT + 5,
    ).outcomes
    got = [(o.job_id, job_pb2.JobState.Name(o.state)) for o in outcomes]
    want = [(i, job_pb2.JobState.Name(state)) for i, (_, state) in zip(ids, expected)]
    if got != want:
        raise AssertionError(f"jobs ended as {got}, expected {want}")
    job_id = broker.Submit(broker_pb2.SubmitRequest(jobs=[_job("builtin.echo", b"once more")]), timeout=_RPC_TIMEOUT).job_ids[0]
    result = broker.WaitFor(broker_pb2.WaitForRequest(job_id=job_id, timeout=_seconds(_RPC_TIMEOUT)), timeout=_RPC_TIMEOUT + 5)
    if result.result != b"once more":
        raise AssertionError(f"WaitFor returned {result.result!r}")


def _expect_code(code, call, *args):
    try:
        call(*args, timeout=_RPC_TIMEOUT)
    except grpc.RpcError as e:
        if e.code() != code:
            raise AssertionError(f"expected {code}, got {e.code()}: {e.details()}") from e
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def make_client_errors(broker):
    """RPCs the broker must refuse: an invalid queue name, an unknown job."""
    _expect_code(
        grpc.StatusCode.INVALID_ARGUMENT,
        broker.Submit,
        broker_pb2.SubmitRequest(jobs=[_job("builtin.noop", queue_name="Not A Queue")]),
    )
    _expect_code(grpc.StatusCode.NOT_FOUND, broker.GetJob, broker_pb2.GetJobRequest(job_id="no-such-job"))


def leave_a_backlog(broker):
    """Jobs on a queue that no executor serves: they stay QUEUED."""
    broker.Submit(
        broker_pb2.SubmitRequest(jobs=[_job("builtin.noop", queue_name=BACKLOG_QUEUE) for _ in range(3)]),
        timeout=_RPC_TIMEOUT,
    )


def lose_a_lease(broker):
    """A fake executor (Broker.Connect) takes one attempt on LEASE_QUEUE and vanishes
    without a heartbeat. Returns once the broker, the lease run out, has put that job
    back in the queue for its next attempt. Each call submits one more job there (the
    fake may be handed one that an earlier call left queued)."""
    spec = _job("builtin.noop", queue_name=LEASE_QUEUE, max_attempts=10)
    broker.Submit(broker_pb2.SubmitRequest(jobs=[spec]), timeout=_RPC_TIMEOUT)
    outbox = queue.Queue()

    def messages():
        while (message := outbox.get()) is not None:
            yield message

    stream = broker.Connect(messages(), timeout=_RPC_TIMEOUT)
    try:
        outbox.put(
            executor_pb2.ExecutorMessage(
                hello=executor_pb2.ExecutorMessage.Hello(executor_id="dashboard-fake", capacity=1, queues=[LEASE_QUEUE])
            )
        )
        outbox.put(executor_pb2.ExecutorMessage(credit=executor_pb2.ExecutorMessage.CreditGrant(credits=1)))
        if not next(stream).HasField("welcome"):
            raise AssertionError("the broker's first message to an executor was not a welcome")
        job = next(m for m in stream if m.HasField("assign")).assign.job
        if job.spec.queue != LEASE_QUEUE:
            raise AssertionError(f"the fake executor of {LEASE_QUEUE} was assigned a job of {job.spec.queue}")
    finally:
        outbox.put(None)
        stream.cancel()

    def requeued():
        got = broker.GetJob(broker_pb2.GetJobRequest(job_id=job.id), timeout=_RPC_TIMEOUT).job
        return got.state == job_pb2.JOB_STATE_QUEUED

    _await(requeued, f"job {job.id} to be requeued after its lease ran out")


def drive_broker_and_executor_load(broker_address):
    """Everything above, in order. Call it again after Prometheus has scraped the
    result: a series' first sample is no increase, so rates (and the quantiles of
    histograms) show only what happens after it."""
    with channel(broker_address) as ch:
        broker = broker_pb2_grpc.BrokerStub(ch)
        run_jobs_to_the_end(broker)
        make_client_errors(broker)
        leave_a_backlog(broker)
        lose_a_lease(broker)


def drive_scheduler_load(scheduler_address, broker_address, schedule_id):
    """Gives the scheduler work: a delayed job and a failing job with a retry (both
    released by the scheduler), and a new schedule, `schedule_id`, firing every second
    on QUEUE. Returns once both released jobs have ended."""
    with channel(broker_address) as bch, channel(scheduler_address) as sch:
        broker = broker_pb2_grpc.BrokerStub(bch)
        scheduler = scheduler_pb2_grpc.SchedulerStub(sch)
        delayed = _job("builtin.noop", delay=_seconds(1))
        retried = _job(
            "builtin.fail",
            b"fails twice",
            max_attempts=2,
            backoff=job_pb2.Backoff(initial=_seconds(0.2), multiplier=1, max=_seconds(0.2)),
        )
        ids = broker.Submit(broker_pb2.SubmitRequest(jobs=[delayed, retried]), timeout=_RPC_TIMEOUT).job_ids
        scheduler.CreateSchedule(
            scheduler_pb2.CreateScheduleRequest(
                schedule_id=schedule_id,
                spec=scheduler_pb2.ScheduleSpec(
                    job=_job("builtin.noop"),
                    interval=_seconds(1),
                    overlap_policy=scheduler_pb2.OVERLAP_POLICY_ALLOW,
                ),
            ),
            timeout=_RPC_TIMEOUT,
        )
        outcomes = broker.Gather(
            broker_pb2.GatherRequest(job_ids=ids, return_exceptions=True, timeout=_seconds(_RPC_TIMEOUT)),
            timeout=_RPC_TIMEOUT + 5,
        ).outcomes
        states = [job_pb2.JobState.Name(o.state) for o in outcomes]
        if states != ["JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED"]:
            raise AssertionError(f"the delayed and retried jobs ended as {states}")
