#include "services/cli/context.h"

#include <cstdlib>

#include "services/cli/connection.h"

namespace cohort::cli {
namespace {

std::string FromEnv(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

}  // namespace

Context::Context()
    : global_flags_("cohortctl [global flags] COMMAND [flags] [args]", "Cohort's command-line client.") {
  options_.server = FromEnv("COHORT_SERVER", "127.0.0.1:7070");
  options_.scheduler = FromEnv("COHORT_SCHEDULER", "");
  global_flags_.Add("server", &options_.server, "the broker (env COHORT_SERVER)", "HOST:PORT");
  global_flags_.Add("scheduler", &options_.scheduler,
                    "the scheduler (env COHORT_SCHEDULER; default: the same as --server)", "HOST:PORT");
  global_flags_.Add("output", &options_.output, "table (for people) or json (protobuf JSON, for scripts)",
                    "FORMAT");
  global_flags_.Add("timeout", &options_.timeout,
                    "deadline to connect, and for each call that does not wait on jobs (put it before the "
                    "command name if the command has a --timeout of its own)");
  auth::FillFromEnvironment(options_.security);
  global_flags_.Add("tls-ca", &options_.security.tls_ca,
                    "CA bundle that signed the servers' certificates; turns TLS on (env COHORT_TLS_CA)", "FILE");
  global_flags_.Add("tls-cert", &options_.security.tls_cert,
                    "client certificate for mutual TLS (env COHORT_TLS_CERT)", "FILE");
  global_flags_.Add("tls-key", &options_.security.tls_key, "key of --tls-cert (env COHORT_TLS_KEY)", "FILE");
  global_flags_.Add("tls-server-name", &options_.security.tls_server_name,
                    "name to expect in the server's certificate if not the host (env COHORT_TLS_SERVER_NAME)",
                    "NAME");
  global_flags_.Add("token", &options_.security.token,
                    "bearer token (env COHORT_TOKEN; prefer the environment or --token-file: flags show in ps)",
                    "TOKEN");
  global_flags_.Add("token-file", &options_.token_file,
                    "file holding the bearer token (env COHORT_TOKEN_FILE)", "FILE");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::Open(absl::string_view service, absl::string_view flag,
                                                             const std::string& address) {
  auth::ClientSecurityOptions security = options_.security;
  if (!options_.token_file.empty()) {
    absl::StatusOr<std::string> token = auth::ReadTokenFile(options_.token_file);
    if (!token.ok()) return token.status();
    security.token = *std::move(token);
  }
  return Connect(service, flag, address, options_.timeout, security);
}

const std::string& Context::scheduler_address() const {
  return options_.scheduler.empty() ? options_.server : options_.scheduler;
}

absl::StatusOr<cohort::v1::Broker::Stub*> Context::Broker() {
  if (broker_ == nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        Open("broker", "--server", options_.server);
    if (!channel.ok()) return channel.status();
    broker_ = cohort::v1::Broker::NewStub(*channel);
  }
  return broker_.get();
}

absl::StatusOr<cohort::v1::Scheduler::Stub*> Context::Scheduler() {
  if (scheduler_ == nullptr) {
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
        Open("scheduler", options_.scheduler.empty() ? "--server" : "--scheduler", scheduler_address());
    if (!channel.ok()) return channel.status();
    scheduler_ = cohort::v1::Scheduler::NewStub(*channel);
  }
  return scheduler_.get();
}

std::unique_ptr<grpc::ClientContext> Context::Call() const {
  auto call = std::make_unique<grpc::ClientContext>();
  call->set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
  return call;
}

std::unique_ptr<grpc::ClientContext> Context::WaitingCall(absl::Duration wait) const {
  auto call = std::make_unique<grpc::ClientContext>();
  if (wait != absl::InfiniteDuration()) call->set_deadline(absl::ToChronoTime(absl::Now() + wait + options_.timeout));
  return call;
}

ExitCode Context::FailBroker(const grpc::Status& status) const {
  return FailRpc(status, "broker", options_.server);
}

ExitCode Context::FailScheduler(const grpc::Status& status) const {
  return FailRpc(status, "scheduler", scheduler_address());
}

}  // namespace cohort::cli
