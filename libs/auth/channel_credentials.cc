#include "libs/auth/channel_credentials.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/support/client_interceptor.h"
#include "libs/auth/server_security.h"
#include "libs/common/address.h"
#include "libs/common/quote.h"

namespace cohort::auth {
namespace {

constexpr unsigned int kReloadSeconds = 10;

// Adds the bearer token to every call's initial metadata.
class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerTokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(std::string token) : header_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&header_);
  }

 private:
  const std::string header_;  // lives as long as the channel, which owns this factory
};

constexpr int kInitialReconnectBackoffMs = 100;

void FillOne(std::string& field, const char* variable) {
  if (!field.empty()) return;
  if (const char* value = std::getenv(variable); value != nullptr) field = value;
}

}  // namespace

absl::StatusOr<std::string> ChannelTarget(absl::string_view flag_name, absl::string_view text) {
  if (!absl::StrContains(text, ',')) {
    absl::StatusOr<common::HostPort> one = common::ParseHostPort(flag_name, text, common::PortZero::kRejected);
    if (!one.ok()) return one.status();
    return one->ToString();
  }
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() > kMaxTargetAddresses) {
    return absl::InvalidArgumentError(absl::StrCat(flag_name, " lists ", parts.size(),
                                                   " addresses: at most ", kMaxTargetAddresses));
  }
  std::vector<std::string> addresses;
  std::optional<common::HostPort::Kind> kind;
  for (absl::string_view part : parts) {
    absl::StatusOr<common::HostPort> address = common::ParseHostPort(flag_name, part, common::PortZero::kRejected);
    if (!address.ok()) return address.status();
    if (address->kind == common::HostPort::Kind::kHostname) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag_name, ": a list of addresses takes IP addresses only (", common::QuoteBounded(part),
          " is a hostname); give a single name instead, e.g. a Service that selects the leader"));
    }
    if (kind.has_value() && *kind != address->kind) {
      return absl::InvalidArgumentError(absl::StrCat(flag_name, ": a list of addresses is all IPv4 or all IPv6"));
    }
    kind = address->kind;
    std::string printed = address->ToString();
    if (absl::c_linear_search(addresses, printed)) {
      return absl::InvalidArgumentError(absl::StrCat(flag_name, " lists ", printed, " twice"));
    }
    addresses.push_back(std::move(printed));
  }
  return absl::StrCat(*kind == common::HostPort::Kind::kIPv4 ? "ipv4:" : "ipv6:", absl::StrJoin(addresses, ","));
}

void FillFromEnvironment(ClientSecurityOptions& options) {
  FillOne(options.tls_ca, "COHORT_TLS_CA");
  FillOne(options.tls_cert, "COHORT_TLS_CERT");
  FillOne(options.tls_key, "COHORT_TLS_KEY");
  FillOne(options.tls_server_name, "COHORT_TLS_SERVER_NAME");
  FillOne(options.token, "COHORT_TOKEN");
  if (options.token.empty()) {
    if (const char* path = std::getenv("COHORT_TOKEN_FILE"); path != nullptr && *path != '\0') {
      if (absl::StatusOr<std::string> token = ReadTokenFile(path); token.ok()) options.token = *std::move(token);
    }
  }
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("token file ", path, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  std::string token(absl::StripAsciiWhitespace(text.str()));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  return token;
}

absl::Status CheckClientSecurity(const ClientSecurityOptions& options) {
  if (options.tls_cert.empty() != options.tls_key.empty()) {
    return absl::InvalidArgumentError("a client certificate needs its key: give both a TLS cert and key");
  }
  if (!options.tls() && !options.tls_cert.empty()) {
    return absl::InvalidArgumentError("a client certificate needs a TLS CA (the CA that signed the server)");
  }
  if (options.tls()) {
    if (absl::Status s = CheckReadable("TLS CA", options.tls_ca); !s.ok()) return s;
  }
  if (!options.tls_cert.empty()) {
    if (absl::Status s = CheckReadable("TLS cert", options.tls_cert); !s.ok()) return s;
    if (absl::Status s = CheckReadable("TLS key", options.tls_key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                            const ClientSecurityOptions& options,
                                                            grpc::ChannelArguments args) {
  if (absl::Status s = CheckClientSecurity(options); !s.ok()) return s;
  std::string resolved = target;
  if (absl::StrContains(target, ',')) {
    absl::StatusOr<std::string> list = ChannelTarget("the target", target);
    if (!list.ok()) return list.status();
    resolved = *std::move(list);
  }
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, kInitialReconnectBackoffMs);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(absl::ToInt64Milliseconds(kMaxReconnectBackoff)));
  const int keepalive_ms = static_cast<int>(
      std::clamp<int64_t>(absl::ToInt64Milliseconds(options.keepalive), 1, std::numeric_limits<int>::max()));
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, std::min(keepalive_ms, 10'000));
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // Keep pinging however long a stream stays quiet (gRPC stops after 2 by default).
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // A connection of its own: gRPC would otherwise share one between channels with equal
  // arguments, and a Cohort server binds a connection to the credential of its first
  // call (authorizer.h), so two channels with different tokens must not share one.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.tls()) {
    std::shared_ptr<grpc::experimental::FileWatcherCertificateProvider> provider;
    if (!options.tls_cert.empty()) {
      provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
          options.tls_key, options.tls_cert, options.tls_ca, kReloadSeconds);
    } else {
      provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(options.tls_ca, kReloadSeconds);
    }
    grpc::experimental::TlsChannelCredentialsOptions tls;
    tls.set_certificate_provider(provider);
    tls.watch_root_certs();
    if (!options.tls_cert.empty()) tls.watch_identity_key_cert_pairs();
    credentials = grpc::experimental::TlsCredentials(tls);
    if (!options.tls_server_name.empty()) args.SetSslTargetNameOverride(options.tls_server_name);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  if (options.token.empty()) return grpc::CreateCustomChannel(resolved, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(options.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(resolved, credentials, args, std::move(interceptors));
}

}  // namespace cohort::auth
