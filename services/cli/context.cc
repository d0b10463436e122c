#include "services/cli/context.h"

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "services/cli/client_config.h"
#include "services/cli/connection.h"

namespace cohort::cli {
namespace {

// The value of one setting: $COHORT_<KEY>, else the file's `key`, else `fallback`.
std::string FromEnvOrFile(const ClientConfig& file, const char* key, std::string fallback) {
  const std::string env_name = absl::AsciiStrToUpper(absl::StrCat("COHORT_", key));
  if (const char* value = std::getenv(env_name.c_str()); value != nullptr && *value != '\0') return value;
  return file.Get(key).value_or(std::move(fallback));
}

bool EnvSet(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0';
}

}  // namespace

Context::Context()
    : global_flags_("cohortctl [global flags] COMMAND [flags] [args]", "Cohort's command-line client.") {
  absl::StatusOr<ClientConfig> loaded = LoadClientConfig();
  ClientConfig file;
  if (loaded.ok()) {
    file = *std::move(loaded);
  } else {
    config_status_ = loaded.status();
  }
  options_.server = FromEnvOrFile(file, "server", "127.0.0.1:7070");
  options_.scheduler = FromEnvOrFile(file, "scheduler", "");
  options_.security.tls_ca = FromEnvOrFile(file, "tls_ca", "");
  options_.security.tls_cert = FromEnvOrFile(file, "tls_cert", "");
  options_.security.tls_key = FromEnvOrFile(file, "tls_key", "");
  options_.security.tls_server_name = FromEnvOrFile(file, "tls_server_name", "");
  if (EnvSet("COHORT_TOKEN") || EnvSet("COHORT_TOKEN_FILE")) {
    options_.security.token = EnvSet("COHORT_TOKEN") ? std::getenv("COHORT_TOKEN") : "";
    options_.token_file = options_.security.token.empty() ? std::getenv("COHORT_TOKEN_FILE") : "";
  } else {
    options_.security.token = file.Get("token").value_or("");
    options_.token_file = options_.security.token.empty() ? file.Get("token_file").value_or("") : "";
  }
  global_flags_.Add("server", &options_.server, "the broker (env COHORT_SERVER, config server)", "HOST:PORT");
  global_flags_.Add("scheduler", &options_.scheduler,
                    "the scheduler (env COHORT_SCHEDULER, config scheduler; default: the same as --server)", "HOST:PORT");
  global_flags_.Add("output", &options_.output, "table (for people) or json (protobuf JSON, for scripts)",
                    "FORMAT");
  global_flags_.Add("timeout", &options_.timeout,
                    "deadline to connect, for each call, and for waits that have no timeout of their own (put it "
                    "before the command name if the command has a --timeout of its own)");
  global_flags_.Add("tls-ca", &options_.security.tls_ca,
                    "CA bundle that signed the servers' certificates; turns TLS on (env COHORT_TLS_CA)", "FILE");
  global_flags_.Add("tls-cert", &options_.security.tls_cert,
                    "client certificate for mutual TLS (env COHORT_TLS_CERT)", "FILE");
  global_flags_.Add("tls-key", &options_.security.tls_key, "key of --tls-cert (env COHORT_TLS_KEY)", "FILE");
  global_flags_.Add("tls-server-name", &options_.security.tls_server_name,
                    "name to expect in the server's certificate if not the host (env COHORT_TLS_SERVER_NAME)",
                    "NAME");
  global_flags_.Add("token", &options_.security.token,
                    "bearer token (env COHORT_TOKEN; prefer the environment, the config file or --token-file: flags "
                    "show in ps)",
                    "TOKEN");
  global_flags_.Add("token-file", &options_.token_file,
                    "file holding the bearer token (env COHORT_TOKEN_FILE)", "FILE");
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Context::Open(absl::string_view service, absl::string_view flag,
                                                             const std::string& address) {
  auth::ClientSecurityOptions security = options_.security;
  std::string token_file = options_.token_file;
  // A token or token file given as a flag replaces the pair from the environment or file.
  if (global_flags_.IsSet("token")) {
    token_file.clear();
  } else if (global_flags_.IsSet("token-file")) {
    security.token.clear();
  }
  if (security.token.empty() && !token_file.empty()) {
    absl::StatusOr<std::string> token = auth::ReadTokenFile(token_file);
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
  if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return Fail(ExitCode::kRejected,
                absl::StrCat("UNIMPLEMENTED: ", scheduler_address(),
                             " does not serve schedules (a broker alone does not; cohort-dev does): point cohortctl "
                             "at the cohort-scheduler with --scheduler=HOST:PORT, COHORT_SCHEDULER or "
                             "`scheduler = HOST:PORT` in ",
                             FindClientConfig().path.empty() ? "the config file" : FindClientConfig().path));
  }
  return FailRpc(status, "scheduler", scheduler_address());
}

}  // namespace cohort::cli
