"""Drives a running cohort-broker for bench/peers/peers.py, from Python grpcio.

One command per stdin line (JSON), one JSON result per stdout line; the protocol is the
same for every system's driver (see peers.py, `Driver`). The executor is a real
cohort-executor started by peers.py; the jobs are `builtin.noop`.

Usage: COHORT_BROKER=HOST:PORT PYTHONPATH=<installed clients/python> python3 cohort_driver.py
"""

import json
import os
import sys
import time

import grpc
from cohort._proto import broker_pb2, broker_pb2_grpc, job_pb2

BATCH = 1000  # jobs per Submit in bulk workloads
MAX_WAIT_IDS = 10_000  # the broker's default --max_wait_ids


class Cohort:
    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(
            address, options=[("grpc.max_receive_message_length", 64 << 20),
                              ("grpc.max_send_message_length", 64 << 20)])
        self.stub = broker_pb2_grpc.BrokerStub(self.channel)
        self.serial = 0

    def queue(self, what: str) -> str:
        self.serial += 1
        return f"{what}-{self.serial}"

    def submit(self, queue: str, n: int) -> list[str]:
        spec = job_pb2.JobSpec(queue=queue, kind="builtin.noop")
        return list(self.stub.Submit(broker_pb2.SubmitRequest(jobs=[spec] * n)).job_ids)

    def gather(self, ids: list[str]) -> None:
        for i in range(0, len(ids), MAX_WAIT_IDS):
            outcomes = self.stub.Gather(broker_pb2.GatherRequest(job_ids=ids[i:i + MAX_WAIT_IDS])).outcomes
            bad = [o for o in outcomes if o.state != job_pb2.JOB_STATE_SUCCEEDED]
            if bad:
                raise SystemExit(f"cohort_driver: job {bad[0].job_id} ended {bad[0].state}")

    def gate(self, queue: str) -> None:
        """Creates `queue` paused. On a broker without CreateQueue, PauseQueue, after a
        first job has created the queue if pausing does not."""
        try:
            self.stub.CreateQueue(broker_pb2.CreateQueueRequest(queue=queue, paused=True))
            return
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        try:
            self.stub.PauseQueue(broker_pb2.PauseQueueRequest(queue=queue))
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            self.gather(self.submit(queue, 1))
            self.stub.PauseQueue(broker_pb2.PauseQueueRequest(queue=queue))

    def release(self, queue: str) -> None:
        self.stub.ResumeQueue(broker_pb2.ResumeQueueRequest(queue=queue))

    # The workloads: each returns a dict of figures (seconds unless named otherwise).
    def gated(self, n: int) -> dict:
        q = self.queue("gated")
        self.gate(q)
        t0 = time.perf_counter()
        ids = []
        for i in range(0, n, BATCH):
            ids += self.submit(q, min(BATCH, n - i))
        t1 = time.perf_counter()
        self.release(q)
        self.gather(ids)
        t2 = time.perf_counter()
        return {"enqueue_s": t1 - t0, "drain_s": t2 - t1}

    def live(self, n: int) -> dict:
        q = self.queue("live")
        t0 = time.perf_counter()
        ids = []
        for i in range(0, n, BATCH):
            ids += self.submit(q, min(BATCH, n - i))
        self.gather(ids)
        return {"live_s": time.perf_counter() - t0}

    def single(self, n: int) -> dict:
        q = self.queue("single")
        self.gate(q)
        t0 = time.perf_counter()
        ids = [self.submit(q, 1)[0] for _ in range(n)]
        elapsed = time.perf_counter() - t0
        self.release(q)
        self.gather(ids)
        return {"single_s": elapsed}

    def roundtrip(self, n: int) -> dict:
        q = self.queue("rt")
        samples = []
        for _ in range(n):
            t0 = time.perf_counter()
            job_id = self.submit(q, 1)[0]
            self.stub.WaitFor(broker_pb2.WaitForRequest(job_id=job_id))
            samples.append(time.perf_counter() - t0)
        return {"rt_samples": samples}

    def gather_batch(self, n: int) -> dict:
        q = self.queue("gather")
        t0 = time.perf_counter()
        self.gather(self.submit(q, n))
        return {"gather_s": time.perf_counter() - t0}


def main() -> None:
    cohort = Cohort(os.environ["COHORT_BROKER"])
    grpc.channel_ready_future(cohort.channel).result(timeout=30)
    deadline = time.monotonic() + 30
    while not cohort.stub.ListExecutors(broker_pb2.ListExecutorsRequest()).executors:
        if time.monotonic() > deadline:
            raise SystemExit("cohort_driver: no executor connected within 30 s")
        time.sleep(0.01)
    ops = {"gated": cohort.gated, "live": cohort.live, "single": cohort.single,
           "roundtrip": cohort.roundtrip, "gather": cohort.gather_batch}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        print(json.dumps(ops[cmd["op"]](cmd["n"])), flush=True)


if __name__ == "__main__":
    main()
