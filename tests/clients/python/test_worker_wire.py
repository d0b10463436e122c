"""cohort.Worker's Connect messages on the wire, against a scripted broker (a grpc.aio
server speaking executor.proto): the worker numbers what it writes from 1 on each
stream, and a broker message whose number skips one (lost on a connection that stayed
up) closes the stream, after which the worker reconnects and numbers afresh
(executor.proto, seq)."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

import cohort
from cohort.pb import executor_pb2
from cohort._proto.broker_pb2_grpc import BrokerServicer, add_BrokerServicer_to_server

BOUND = 30.0  # seconds: generous, CI runs on two cores


class ScriptedBroker(BrokerServicer):
    """Welcomes each stream (numbered 1) and records what the worker writes on it. On the
    first stream it then sends a LeaseExtended numbered 3, as if 2 had been lost."""

    def __init__(self) -> None:
        self.streams: list[list[Any]] = []
        self.first_ended = asyncio.Event()
        self.second_hello = asyncio.Event()

    async def Connect(self, request_iterator: Any, context: Any) -> None:  # noqa: N802 (gRPC's name)
        index = len(self.streams)
        received: list[Any] = []
        self.streams.append(received)
        hello = await context.read()
        received.append(hello)
        welcome = executor_pb2.BrokerMessage(seq=1)
        welcome.welcome.heartbeat_interval.FromMilliseconds(200)
        await context.write(welcome)
        if index == 0:
            received.append(await context.read())  # the first credit
            gap = executor_pb2.BrokerMessage(seq=3)
            gap.lease_extended.SetInParent()
            await context.write(gap)
            try:
                while (message := await context.read()) is not grpc.aio.EOF:
                    received.append(message)
            finally:
                self.first_ended.set()
            return
        self.second_hello.set()
        while (message := await context.read()) is not grpc.aio.EOF:
            received.append(message)


async def test_a_missing_broker_message_number_closes_the_stream_and_the_worker_reconnects() -> None:
    broker = ScriptedBroker()
    server = grpc.aio.server()
    add_BrokerServicer_to_server(broker, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    worker = cohort.Worker(f"127.0.0.1:{port}", queues=["wire"], executor_id="wire-seq", reconnect_backoff=(0.05, 0.1))

    @worker.task("py.noop")
    async def noop(payload: bytes) -> bytes:
        return payload

    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(broker.first_ended.wait(), BOUND)
        await asyncio.wait_for(broker.second_hello.wait(), BOUND)
        first, second = broker.streams[0], broker.streams[1]
        assert first[0].WhichOneof("body") == "hello" and first[0].seq == 1
        assert first[1].WhichOneof("body") == "credit" and first[1].seq == 2
        assert second[0].WhichOneof("body") == "hello" and second[0].seq == 1, "each stream is numbered from 1"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await server.stop(None)
