#include "libs/rpc/server.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "grpc/impl/codegen/grpc_types.h"
#include "grpcpp/security/server_credentials.h"
#include "libs/rpc/internal/unparseable_request.h"

namespace cohort::rpc {

absl::StatusOr<StartedServer> StartServer(grpc::ServerBuilder& builder, const common::HostPort& listen,
                                          std::shared_ptr<grpc::ServerCredentials> credentials) {
  // Fail early, with a clear line, on a port that another process serves: gRPC would
  // only log its own multi-line error and return null.
  if (absl::Status probed = common::ProbeListen("gRPC", listen); !probed.ok()) return probed;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Liveness both ways. Clients ping every ClientSecurityOptions::keepalive (20 s by
  // default, down to 1 s) even with no call open: accept it rather than answer with
  // GOAWAY "too_many_pings". The server pings too, so a stream from a client that
  // vanished (a dead node) ends within about 40 s instead of TCP's ~15 minutes.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 500);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  // Synchronous services (reflection) poll in slices of this; gRPC's default of 10 s
  // could hold a stopping process that long.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::CQ_TIMEOUT_MSEC, 200);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<internal::UnparseableRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  if (credentials == nullptr) credentials = grpc::InsecureServerCredentials();
  builder.AddListeningPort(listen.ToString(), std::move(credentials), &port);
  StartedServer started{builder.BuildAndStart(), listen};
  if (started.server == nullptr || port == 0) {
    // Lost a race for the port since the probe, or something the probe cannot see.
    if (absl::Status probed = common::ProbeListen("gRPC", listen); !probed.ok()) return probed;
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", listen.ToString()));
  }
  started.bound.port = static_cast<std::uint16_t>(port);
  return started;
}

void StopServer(grpc::Server& server) {
  server.Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(kShutdownGrace));
}

}  // namespace cohort::rpc
