#!/usr/bin/env bash
# Generates Cohort's Python messages and gRPC stubs from protos/ into OUT_DIR, with
# Debian's protoc and grpc_python_plugin (packages protobuf-compiler and
# protobuf-compiler-grpc). The modules land in OUT_DIR/protos/cohort/v1/; put OUT_DIR on
# PYTHONPATH. Nothing generated is committed.
#
#   examples/python/gen_stubs.sh /tmp/cohort-stubs
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
# The imports inside the protos are workspace paths (protos/cohort/v1/job.proto).
cd "$(dirname "$0")/../.."
/usr/bin/protoc -I. -I/usr/include \
  --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
  protos/cohort/v1/job.proto protos/cohort/v1/executor.proto protos/cohort/v1/broker.proto
