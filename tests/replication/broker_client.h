#pragma once
// Client helpers the replication tests share: a call context with a deadline, and a
// Broker stub over auth::MakeChannel (a single address or a replica list).
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "grpcpp/client_context.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"

namespace cohort::testing {

// A client context whose deadline is `after` from now.
inline std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration after) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + after));
  return ctx;
}

// A Broker stub for `target`; a channel that cannot be made fails the test.
inline std::unique_ptr<cohort::v1::Broker::Stub> StubFor(const std::string& target) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = auth::MakeChannel(target, {});
  EXPECT_TRUE(channel.ok()) << channel.status();
  return cohort::v1::Broker::NewStub(*channel);
}

}  // namespace cohort::testing
