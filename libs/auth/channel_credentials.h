#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace cohort::auth {

// How a client reaches a Cohort server: every channel in the tree (executor and
// scheduler to the broker, cohortctl, cohort-demo, cohort-console, the examples) is
// made by MakeChannel from one of these.
struct ClientSecurityOptions {
  std::string tls_ca;           // PEM CA bundle that signed the server's certificate; turns TLS on
  std::string tls_cert;         // PEM client certificate chain (mTLS), with tls_key
  std::string tls_key;
  std::string tls_server_name;  // name to verify in the server's certificate if not the target host
  std::string token;            // bearer token sent on every call (never logged)
  // Not security but the channel's liveness: an HTTP/2 ping after this long without
  // traffic, even with no call open; a connection whose ping goes unanswered for
  // min(keepalive, 10 s) is dropped and redialled. Without it a long-lived stream (an
  // executor's Connect, a Watch) on a half-open TCP connection, left by a node that
  // died or a NAT that forgot the flow, would wait for the kernel's retransmission
  // timeout (about 15 minutes). Servers accept pings this often (rpc::StartServer).
  absl::Duration keepalive = absl::Seconds(20);

  bool tls() const { return !tls_ca.empty(); }
};

// Fills the fields left empty from the environment: COHORT_TLS_CA, COHORT_TLS_CERT,
// COHORT_TLS_KEY, COHORT_TLS_SERVER_NAME, COHORT_TOKEN, or COHORT_TOKEN_FILE (a file
// holding the token, e.g. a mounted Secret). Flags given explicitly win.
void FillFromEnvironment(ClientSecurityOptions& options);

// Reads a token from `path` (surrounding whitespace dropped). NOT_FOUND naming the path,
// INVALID_ARGUMENT if it is empty; the token itself is never quoted.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// The checks MakeChannel makes before it builds anything: a certificate comes with its
// key and a CA, and every named file is readable (errors name the file).
absl::Status CheckClientSecurity(const ClientSecurityOptions& options);

// At most this many addresses in one target list (a broker group has 3 or 5 replicas).
inline constexpr std::size_t kMaxTargetAddresses = 16;

// The gRPC target for what a user wrote as a server address (`flag_name` names it in
// errors, which quote a bounded prefix of `text`):
//  - one HOST:PORT (`127.0.0.1:7070`, `[::1]:7070`, `broker.cohort:7070`): itself;
//  - a comma-separated list of IP HOST:PORTs, all IPv4 or all IPv6, port 1..65535, no
//    repeats, at most kMaxTargetAddresses (`127.0.0.1:7001,127.0.0.1:7002`): the
//    replicas of a broker group, of which only the leader listens. Returns gRPC's
//    address-list target (`ipv4:127.0.0.1:7001,127.0.0.1:7002`), over which the
//    default pick_first policy connects to the first address that accepts and, when
//    that connection breaks, tries the list again. A list of hostnames is refused:
//    give one name instead (in Kubernetes, the Service that selects the leader).
// INVALID_ARGUMENT otherwise. Commands parse their --broker/--server flag with it.
absl::StatusOr<std::string> ChannelTarget(absl::string_view flag_name, absl::string_view text);

// A channel to `target` (one HOST:PORT or a list, see ChannelTarget; anything else
// without a comma, such as `unix:PATH`, is passed to gRPC as it is) with `args` and
// options.keepalive: TLS when tls_ca is set (CA and client
// certificate files watched and re-read every 10 s, so rotated Secrets take effect on
// new connections), plaintext otherwise; with a token, every call carries
// `authorization: Bearer <token>`. The channel's connections are its own, never shared
// with another channel (a server binds a connection to one credential). Unreadable
// files and a cert without its key are INVALID_ARGUMENT/NOT_FOUND naming the file; a
// malformed list is ChannelTarget's INVALID_ARGUMENT; connection problems show up on
// calls.
//
// Reconnecting: a broken connection is redialled after 100 ms, backing off to at most
// kMaxReconnectBackoff (gRPC's own cap is 120 s), so that a client reaches a new
// broker leader within about a second of its start, whichever address it serves on.
inline constexpr absl::Duration kMaxReconnectBackoff = absl::Seconds(1);
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target,
                                                            const ClientSecurityOptions& options,
                                                            grpc::ChannelArguments args = {});

}  // namespace cohort::auth
