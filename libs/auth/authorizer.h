#pragma once

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "grpcpp/security/auth_metadata_processor.h"
#include "libs/auth/token_store.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/registry.h"

namespace cohort::auth {

// The gRPC server's gatekeeper, run by gRPC on every call before the handler exists
// (an AuthMetadataProcessor on the server credentials; it sees the call's `:path`).
//
// For each call it finds the method in the scope table (scope_table.h) and the caller:
// a bearer token (`authorization: Bearer <token>`) looked up by hash in the token store,
// else the verified mTLS client certificate's common name (`cn:` entries). Then:
//   - health checks pass with no credential (probes carry none);
//   - no credential, or an unknown token: UNAUTHENTICATED;
//   - a method outside the table, or a scope the principal lacks: PERMISSION_DENIED
//     naming the method and the missing scope.
// A refused call never reaches its handler, so it changes nothing. Refusals are counted
// in cohort_<service>_auth_denied_total{method, reason} (method is "other" outside the
// table; reason unauthenticated | unknown_token | missing_scope | unknown_method |
// connection_bound).
// Handlers count the refusals only a request can decide in the same family
// (queue_not_allowed: a queue outside the credential's patterns; executor_not_allowed:
// an executor id it may not use, or one connected under another principal).
// gRPC's server AuthContext belongs to the connection, shared by all its calls, so a
// connection speaks for one principal: its first admitted call writes the principal,
// its executor pattern and its queue patterns there (principal.h: handlers check Hello
// ids and Submit queues), once. Every later call is still judged on its own credential
// (revoked tokens and removed scopes take effect at once), and one whose principal or
// patterns differ from the connection's is PERMISSION_DENIED (reason
// connection_bound): it would otherwise act with another principal's grants. Clients
// made by MakeChannel keep one connection per channel, hence per credential.
// The token is removed from the metadata handlers see. No message quotes a token.
// Thread-safe; runs inline on gRPC's threads (non-blocking: a SHA-256, a map lookup and,
// under a mutex, a scan of the connection's few properties).
class Authorizer final : public grpc::AuthMetadataProcessor {
 public:
  Authorizer(std::shared_ptr<TokenStore> tokens, prometheus::Registry& registry, const std::string& service);

  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata, OutputMetadata* response_metadata) override;

 private:
  grpc::Status Deny(absl::string_view method, const char* reason, grpc::StatusCode code, std::string message);

  std::shared_ptr<TokenStore> tokens_;
  prometheus::Family<prometheus::Counter>& denied_;
  // Serialises every access to a connection's AuthContext here (first calls on one
  // connection may be processed concurrently, and gRPC's property list is not
  // thread-safe). Handlers read it without this lock, which is safe: the one write
  // happens before any call that reads it is admitted (calls needing no scope, the
  // health checks, read nothing).
  absl::Mutex bind_mu_;
};

}  // namespace cohort::auth
