#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "libs/auth/channel_credentials.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "services/cli/exit_code.h"
#include "services/cli/flag_set.h"
#include "services/cli/output.h"

namespace cohort::cli {

// cohortctl's global flags. Each connection setting comes from its flag, else its
// environment variable, else the config file (client_config.h), else its default.
struct GlobalOptions {
  // The broker, HOST:PORT: --server, $COHORT_SERVER, `server`, 127.0.0.1:7070.
  std::string server;
  // The scheduler: --scheduler, $COHORT_SCHEDULER, `scheduler`, else the same as the
  // server (cohort-dev serves both on one port).
  std::string scheduler;
  OutputFormat output = OutputFormat::kTable;
  // Deadline for connecting and for every call that does not wait on jobs.
  absl::Duration timeout = absl::Seconds(5);
  // TLS and the bearer token, for both services: --tls-ca, --tls-cert, --tls-key,
  // --tls-server-name, --token, else $COHORT_TLS_CA, ..., else tls_ca, ... in the file.
  auth::ClientSecurityOptions security;
  // Read when a connection opens, if `security.token` is empty. The token and its file
  // come as a pair from the first source (flags, environment, file) that gives either;
  // one source giving both means the token.
  std::string token_file;
};

// What every command shares: the global options (and the FlagSet that parses them) and
// the connections, each opened on first use (Connect: a clear error within --timeout
// when the server is not there). One per process, used from the main thread.
class Context {
 public:
  // Defines the global flags; their defaults come from the environment (COHORT_SERVER,
  // COHORT_SCHEDULER, COHORT_TLS_*, COHORT_TOKEN, COHORT_TOKEN_FILE) and the config file.
  Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  FlagSet& global_flags() { return global_flags_; }
  // The config file could not be read or parsed: "<file>:<line>: <reason>" (checked by
  // main before a command runs, so --help and --version work regardless).
  const absl::Status& config_status() const { return config_status_; }
  const GlobalOptions& options() const { return options_; }
  bool json() const { return options_.output == OutputFormat::kJson; }

  // The connected broker (or scheduler) stub; UNAVAILABLE, DEADLINE_EXCEEDED or
  // INVALID_ARGUMENT as Connect() says, for FailLocal().
  absl::StatusOr<cohort::v1::Broker::Stub*> Broker();
  absl::StatusOr<cohort::v1::Scheduler::Stub*> Scheduler();

  // How long a wait with no timeout of its own may last: the global --timeout when it
  // was given (before the command name), else forever.
  absl::Duration DefaultWait() const {
    return global_flags_.IsSet("timeout") ? options_.timeout : absl::InfiniteDuration();
  }

  // A call context whose deadline is --timeout from now.
  std::unique_ptr<grpc::ClientContext> Call() const;
  // A call context for an RPC that waits on jobs for up to `wait` (the request's own
  // timeout): its deadline is `wait` plus --timeout, so the server's answer arrives
  // before the deadline; none when `wait` is infinite.
  std::unique_ptr<grpc::ClientContext> WaitingCall(absl::Duration wait) const;

  // FailRpc() for a call to the broker or the scheduler.
  ExitCode FailBroker(const grpc::Status& status) const;
  ExitCode FailScheduler(const grpc::Status& status) const;

 private:
  const std::string& scheduler_address() const;
  // Connect() with the security options (and --token-file read now).
  absl::StatusOr<std::shared_ptr<grpc::Channel>> Open(absl::string_view service, absl::string_view flag,
                                                      const std::string& address);

  GlobalOptions options_;
  absl::Status config_status_;
  FlagSet global_flags_;
  std::unique_ptr<cohort::v1::Broker::Stub> broker_;
  std::unique_ptr<cohort::v1::Scheduler::Stub> scheduler_;
};

}  // namespace cohort::cli
