#!/usr/bin/python3
"""A Cohort client in Python: asyncio's gather and wait, as RPCs to the broker.

1. Submits a batch of builtin.echo jobs and gathers their results, which come back in
   submission order whatever order the jobs finish in (asyncio.gather).
2. Submits three builtin.sleep jobs (one short, two long) and waits with
   FIRST_COMPLETED (asyncio.wait): the short one is done, the long ones pending. Wait
   never cancels, so the client then cancels the pending ones itself.

Needs a broker and an executor serving the queue (builtin kinds). Prints what it gets
on stdout; on an RPC failure prints one line to stderr and exits 1.

    PYTHONPATH=/tmp/cohort-stubs /usr/bin/python3 examples/python/client.py --server=127.0.0.1:7070
"""

import argparse
import sys

import grpc
from google.protobuf import duration_pb2

from protos.cohort.v1 import broker_pb2, broker_pb2_grpc, job_pb2

from cohort_channel import cohort_channel


# The short sleep runs at a higher priority, so it is dispatched first even by an
# executor with a single slot; the long ones would run for a minute if not cancelled.
SLEEPS = [("60s", 0), ("100ms", 1), ("60s", 0)]


class ClientError(Exception):
    """A failed RPC, described in one line."""


def call(stub, name, request, timeout):
    """stub.<name>(request) with a deadline of `timeout` seconds."""
    try:
        return getattr(stub, name)(request, timeout=timeout)
    except grpc.RpcError as e:
        raise ClientError(f"{name} failed: {e.code().name}: {e.details()}") from e


def state_name(state):
    """JOB_STATE_SUCCEEDED -> SUCCEEDED."""
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def seconds(value):
    return duration_pb2.Duration(seconds=int(value))


def run(stub, queue, count, timeout):
    payloads = [f"hello {i}" for i in range(count)]
    submitted = call(stub, "Submit", broker_pb2.SubmitRequest(jobs=[
        job_pb2.JobSpec(queue=queue, kind="builtin.echo", payload=p.encode()) for p in payloads
    ]), timeout)
    print(f"submitted {count} builtin.echo jobs to queue {queue}")

    gathered = call(stub, "Gather", broker_pb2.GatherRequest(
        job_ids=submitted.job_ids, timeout=seconds(timeout)), timeout + 5)
    for i, outcome in enumerate(gathered.outcomes):
        print(f"gather[{i}] = {outcome.result.decode()}")

    submitted = call(stub, "Submit", broker_pb2.SubmitRequest(jobs=[
        job_pb2.JobSpec(queue=queue, kind="builtin.sleep", payload=d.encode(), priority=p)
        for d, p in SLEEPS
    ]), timeout)
    label = {job_id: d for job_id, (d, _) in zip(submitted.job_ids, SLEEPS)}
    waited = call(stub, "Wait", broker_pb2.WaitRequest(
        job_ids=submitted.job_ids, return_when=broker_pb2.RETURN_WHEN_FIRST_COMPLETED,
        timeout=seconds(timeout)), timeout + 5)
    done = ", ".join(f"sleep {label[o.job_id]} {state_name(o.state)}" for o in waited.done)
    pending = ", ".join(f"sleep {label[job_id]}" for job_id in waited.pending)
    print(f"wait FIRST_COMPLETED: done=[{done}] pending=[{pending}]")

    for job_id in waited.pending:
        call(stub, "CancelJob", broker_pb2.CancelJobRequest(job_id=job_id), timeout)
    print(f"cancelled {len(waited.pending)} pending jobs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="127.0.0.1:7070", help="the broker, HOST:PORT")
    parser.add_argument("--queue", default="examples", help="queue for the jobs")
    parser.add_argument("--count", type=int, default=5, help="echo jobs to gather (1..1000)")
    parser.add_argument("--timeout", type=int, default=60, help="seconds to wait at most")
    args = parser.parse_args()
    if not 1 <= args.count <= 1000:
        parser.error("--count must be in 1..1000")
    if args.timeout < 1:
        parser.error("--timeout must be at least 1")

    with cohort_channel(args.server) as channel:
        try:
            run(broker_pb2_grpc.BrokerStub(channel), args.queue, args.count, args.timeout)
        except ClientError as e:
            print(f"client.py: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
