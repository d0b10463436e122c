#include "libs/rpc/internal/unparseable_request.h"

#include <string>

namespace cohort::rpc::internal {

using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

void UnparseableRequestInterceptor::Intercept(grpc::experimental::InterceptorBatchMethods* methods) {
  if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) && !first_message_seen_) {
    // The request message; null only when it did not parse.
    first_message_seen_ = true;
    unparseable_ = methods->GetRecvMessage() == nullptr;
  }
  if (unparseable_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS) &&
      methods->GetSendStatus().error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    // info_->method() is the registered name ("/cohort.v1.Broker/Submit"), not input.
    methods->ModifySendStatus(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        std::string("the request body is not a valid protobuf message for ") + info_->method()));
  }
  methods->Proceed();
}

grpc::experimental::Interceptor* UnparseableRequestInterceptorFactory::CreateServerInterceptor(
    ServerRpcInfo* info) {
  // Streams from the client have no single request to check: there gRPC ends the read
  // of a message that does not parse as if the client had half-closed, and only the
  // handler can answer (Connect: no hello).
  if (info->type() != ServerRpcInfo::Type::UNARY && info->type() != ServerRpcInfo::Type::SERVER_STREAMING) {
    return nullptr;
  }
  return new UnparseableRequestInterceptor(info);
}

}  // namespace cohort::rpc::internal
