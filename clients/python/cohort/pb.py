"""Cohort's generated messages (package cohort.v1), for callers that want the raw types:
`cohort.pb.job_pb2.JobSpec`, `cohort.pb.broker_pb2`, `cohort.pb.scheduler_pb2`,
`cohort.pb.executor_pb2`, and the raw gRPC stubs in the `*_pb2_grpc` modules."""

from cohort._proto import broker_pb2, executor_pb2, job_pb2, scheduler_pb2

__all__ = ["broker_pb2", "executor_pb2", "job_pb2", "scheduler_pb2"]
