#include "services/cli/connection.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/channel_arguments.h"
#include "libs/common/backoff.h"
#include "services/cli/output.h"

namespace cohort::cli {
namespace {

// Results and listings can be large (Gather of 10,000 jobs); the broker's own cap is
// 64 MiB by default.
constexpr int kMaxMessageBytes = 64 << 20;

// Calls grpc.health.v1.Health/Check (an empty HealthCheckRequest asks about the whole
// server) without waiting for the channel to become ready: the first connection
// failure ends it.
grpc::Status ProbeHealth(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);
  grpc::ByteBuffer response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

}  // namespace

std::string TransportReason(absl::string_view grpc_message) {
  absl::string_view reason = grpc_message;
  if (std::size_t colon = reason.rfind(": "); colon != absl::string_view::npos) reason.remove_prefix(colon + 2);
  reason = absl::StripAsciiWhitespace(reason);
  if (reason.empty()) return "unavailable";
  std::string out(reason);
  out[0] = absl::ascii_tolower(out[0]);
  return out;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(absl::string_view service, absl::string_view flag,
                                                       absl::string_view address, absl::Duration timeout,
                                                       const auth::ClientSecurityOptions& security) {
  // One HOST:PORT, or every replica of a broker group (only its leader listens).
  absl::StatusOr<std::string> target = auth::ChannelTarget(flag, address);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> made = auth::MakeChannel(std::string(address), security, args);
  if (!made.ok()) return made.status();
  std::shared_ptr<grpc::Channel> channel = *std::move(made);
  const absl::Time end = absl::Now() + timeout;
  grpc::Status probe = ProbeHealth(channel, timeout);
  // A group with no leader right now (an election, ~2-3 s after the leader died): every
  // replica refuses, so try again until the timeout rather than fail at once.
  if (*target != address) {
    common::Backoff backoff({.initial = absl::Milliseconds(50), .max = absl::Milliseconds(500)});
    while (probe.error_code() == grpc::StatusCode::UNAVAILABLE && absl::Now() + backoff.Peek() < end) {
      absl::SleepFor(backoff.Next());
      probe = ProbeHealth(channel, end - absl::Now());
    }
  }
  if (probe.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach ", service, " at ", address, ": ", TransportReason(probe.error_message())));
  }
  if (probe.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::DeadlineExceededError(
        absl::StrCat("cannot reach ", service, " at ", address, ": no answer within ", FormatAge(timeout)));
  }
  return channel;
}

}  // namespace cohort::cli
