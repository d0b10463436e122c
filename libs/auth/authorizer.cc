#include "libs/auth/authorizer.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/auth/scope_table.h"
#include "libs/common/metrics.h"
#include "libs/common/quote.h"

namespace cohort::auth {
namespace {

absl::string_view View(grpc::string_ref ref) { return absl::string_view(ref.data(), ref.size()); }

// Whether the connection's bound properties are exactly `principal`'s grants.
bool HoldsGrantsOf(const grpc::AuthContext& context, const Principal& principal) {
  std::vector<grpc::string_ref> names = context.FindPropertyValues(kPrincipalProperty);
  std::vector<grpc::string_ref> executor = context.FindPropertyValues(kExecutorPatternProperty);
  std::vector<grpc::string_ref> queues = context.FindPropertyValues(kQueuePatternProperty);
  if (names.size() != 1 || View(names.front()) != principal.name) return false;
  if (executor.size() != (principal.executor_pattern.empty() ? 0u : 1u)) return false;
  if (!executor.empty() && View(executor.front()) != principal.executor_pattern) return false;
  if (queues.size() != principal.queue_patterns.size()) return false;
  for (std::size_t i = 0; i < queues.size(); ++i) {
    if (View(queues[i]) != principal.queue_patterns[i]) return false;
  }
  return true;
}

std::string MissingScopes(const ScopeSet& required, const ScopeSet& held) {
  return FormatScopes(required & ~held);
}

}  // namespace

Authorizer::Authorizer(std::shared_ptr<TokenStore> tokens, prometheus::Registry& registry, const std::string& service)
    : tokens_(std::move(tokens)),
      denied_(common::ServiceMetrics(registry, service)
                  .AddCounter("auth_denied", "Calls refused for their credential, by method and reason.")) {}

grpc::Status Authorizer::Deny(absl::string_view method, const char* reason, grpc::StatusCode code,
                              std::string message) {
  denied_.Add({{"method", std::string(method)}, {"reason", reason}}).Increment();
  return grpc::Status(code, std::move(message));
}

grpc::Status Authorizer::Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                                 OutputMetadata* consumed_auth_metadata, OutputMetadata* /*response_metadata*/) {
  absl::string_view path;
  absl::string_view authorization;
  bool has_authorization = false;
  for (const auto& [key, value] : auth_metadata) {
    if (View(key) == ":path") path = View(value);
    if (View(key) == "authorization") {
      authorization = View(value);
      has_authorization = true;
    }
  }
  const MethodRule* rule = FindMethodRule(path);
  // The label is a name from the table, never caller text.
  absl::string_view method = rule != nullptr ? rule->path : absl::string_view("other");
  if (rule == nullptr) {
    return Deny(method, "unknown_method", grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat("method ", common::QuoteBounded(path), " is not in Cohort's scope table"));
  }
  if (rule->required.none()) return grpc::Status::OK;

  std::optional<Principal> principal;
  if (has_authorization) {
    absl::string_view token = authorization;
    if (!absl::ConsumePrefix(&token, "Bearer ") && !absl::ConsumePrefix(&token, "bearer ")) {
      return Deny(method, "unauthenticated", grpc::StatusCode::UNAUTHENTICATED,
                  "the authorization header must be \"Bearer <token>\"");
    }
    principal = tokens_->FindToken(token);
    if (!principal.has_value()) {
      return Deny(method, "unknown_token", grpc::StatusCode::UNAUTHENTICATED,
                  "the bearer token is not known to this server (revoked, mistyped or for another cluster)");
    }
    consumed_auth_metadata->emplace("authorization", std::string(authorization));
  } else if (context != nullptr && context->IsPeerAuthenticated()) {
    absl::MutexLock lock(&bind_mu_);  // another call may be binding this connection
    for (const grpc::string_ref& cn : context->FindPropertyValues("x509_common_name")) {
      principal = tokens_->FindCommonName(View(cn));
      if (principal.has_value()) break;
    }
  }
  if (!principal.has_value()) {
    return Deny(method, "unauthenticated", grpc::StatusCode::UNAUTHENTICATED,
                absl::StrCat(rule->path, " needs scope ", FormatScopes(rule->required),
                             ": send a bearer token (authorization: Bearer ...) or a client certificate the "
                             "server grants"));
  }
  if ((rule->required & ~principal->scopes).any()) {
    return Deny(method, "missing_scope", grpc::StatusCode::PERMISSION_DENIED,
                absl::StrCat("principal \"", principal->name, "\" lacks scope ",
                             MissingScopes(rule->required, principal->scopes), " needed by ", rule->path));
  }
  if (context != nullptr) {
    // gRPC gives every call on a connection the same AuthContext: the principal's
    // properties are written once, by the connection's first admitted call, and never
    // again (a later write would race handlers reading them, and grow without bound).
    absl::MutexLock lock(&bind_mu_);
    std::vector<grpc::string_ref> bound = context->FindPropertyValues(kPrincipalProperty);
    if (bound.empty()) {
      context->AddProperty(kPrincipalProperty, principal->name);
      if (!principal->executor_pattern.empty()) {
        context->AddProperty(kExecutorPatternProperty, principal->executor_pattern);
      }
      for (const std::string& pattern : principal->queue_patterns) context->AddProperty(kQueuePatternProperty, pattern);
    } else if (!HoldsGrantsOf(*context, *principal)) {
      return Deny(method, "connection_bound", grpc::StatusCode::PERMISSION_DENIED,
                  absl::StrCat("this connection already carries the calls of principal \"", View(bound.front()),
                               "\" as granted when it opened; a connection carries one credential: open another "
                               "connection for principal \"",
                               principal->name, "\" (or to use grants changed since)"));
    }
  }
  return grpc::Status::OK;
}

}  // namespace cohort::auth
