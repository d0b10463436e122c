#pragma once

#include "grpcpp/support/interceptor.h"
#include "grpcpp/support/server_interceptor.h"

namespace cohort::rpc::internal {

// gRPC's callback server answers a request body that does not parse as the method's
// request message with UNIMPLEMENTED and an empty message (its generated handlers
// fail the call that way whatever went wrong, see server_callback_handlers.h in gRPC
// 1.51). This interceptor, on every call with a request message (unary and server
// streaming), notices the failed parse (gRPC hands it a null request) and rewrites
// that status to INVALID_ARGUMENT with a fixed, bounded message naming the method.
// Calls whose request parsed are passed through untouched.
class UnparseableRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit UnparseableRequestInterceptor(grpc::experimental::ServerRpcInfo* info) : info_(info) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override;

 private:
  grpc::experimental::ServerRpcInfo* const info_;
  bool first_message_seen_ = false;
  bool unparseable_ = false;
};

class UnparseableRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(grpc::experimental::ServerRpcInfo* info) override;
};

}  // namespace cohort::rpc::internal
