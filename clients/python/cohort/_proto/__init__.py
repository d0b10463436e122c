"""Cohort's messages and gRPC stubs (package cohort.v1), generated from
protos/cohort/v1/*.proto when the package is built: job_pb2, executor_pb2, broker_pb2,
scheduler_pb2 and their *_pb2_grpc stubs. Nothing here is committed but this file."""
