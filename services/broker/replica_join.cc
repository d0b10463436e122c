#include "services/broker/replica_join.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "libs/common/address.h"
#include "libs/common/log.h"
#include "libs/common/quote.h"
#include "libs/rpc/status.h"
#include "services/broker/replica_join_auth.h"

namespace cohort::broker {
namespace {

const log::Logger kLog("broker");

// Longest address accepted from the wire: a DNS name (253) and a port.
constexpr std::size_t kMaxAddressBytes = 260;

}  // namespace

ReplicaPeersService::ReplicaPeersService(std::function<bool()> leading,
                                         std::function<absl::Status(const replication::Member&)> add,
                                         ReplicaMetrics& metrics, std::string secret, std::function<absl::Time()> now)
    : secret_(std::move(secret)),
      challenges_(std::move(now)),
      leading_(std::move(leading)),
      add_(std::move(add)),
      metrics_(metrics) {}

grpc::Status ReplicaPeersService::Join(grpc::ServerContext* ctx, const cohort::v1::JoinRequest* req,
                                       cohort::v1::JoinResponse*) {
  absl::Status status;
  if (!secret_.empty()) {
    const auto value = [&](const char* key) -> std::optional<absl::string_view> {
      const auto it = ctx->client_metadata().find(key);
      if (it == ctx->client_metadata().end()) return std::nullopt;
      return absl::string_view(it->second.data(), it->second.size());
    };
    if (!value(kJoinAuthKey).has_value() && !value(kJoinChallengeKey).has_value()) {
      // The protocol's first step: not a refusal.
      ctx->AddTrailingMetadata(kJoinChallengeKey, challenges_.Issue());
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          absl::StrCat("Join needs a proof of the group's secret: answer the challenge in this "
                                       "refusal's trailing metadata ", kJoinChallengeKey));
    }
    status = challenges_.Check(secret_, *req, value(kJoinChallengeKey), value(kJoinAuthKey));
    if (!status.ok()) {
      kLog.Warn("replica join refused: no valid proof of the group's secret",
                {{"peer", ctx->peer().substr(0, 128)}, {"status", status.ToString()}});
    }
  }
  if (status.ok()) status = Answer(*req);
  metrics_.CountJoinRequest(std::string(rpc::CodeName(static_cast<int>(status.code()))));
  return rpc::ToGrpc(status);
}

absl::Status ReplicaPeersService::Answer(const cohort::v1::JoinRequest& req) {
  if (req.address().size() > kMaxAddressBytes) {
    return absl::InvalidArgumentError(absl::StrCat("address ", common::QuoteBounded(req.address()),
                                                   " is longer than ", kMaxAddressBytes, " bytes"));
  }
  if (!leading_()) return absl::UnavailableError("this replica does not lead: ask another");
  if (busy_.exchange(true)) {
    return absl::FailedPreconditionError("another replica's join is in progress here: retry once it is done");
  }
  const replication::Member member{req.id(), req.address()};
  kLog.Info("replica asks to join: adding it (no vote until it has caught up)",
            {{"id", absl::StrCat(member.id)}, {"address", member.address}});
  const absl::Time start = absl::Now();
  absl::Status status = add_(member);
  busy_.store(false);
  const std::string took = absl::FormatDuration(absl::Now() - start);
  if (status.ok()) {
    kLog.Info("replica joined: a voter now", {{"id", absl::StrCat(member.id)}, {"took", took}});
  } else {
    kLog.Warn("replica not joined", {{"id", absl::StrCat(member.id)}, {"status", status.ToString()}, {"took", took}});
  }
  return status;
}

ReplicaJoiner::ReplicaJoiner(replication::Member self, std::string join_through, std::function<bool()> is_voter,
                             ReplicaMetrics& metrics, std::string secret)
    : self_(std::move(self)),
      join_through_(std::move(join_through)),
      is_voter_(std::move(is_voter)),
      metrics_(metrics),
      secret_(std::move(secret)) {
  metrics_.SetJoining(true);
  thread_ = std::thread([this] { Run(); });
}

ReplicaJoiner::~ReplicaJoiner() { Stop(); }

void ReplicaJoiner::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (call_ != nullptr) call_->TryCancel();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  metrics_.SetJoining(false);
}

bool ReplicaJoiner::Wait(std::chrono::milliseconds period) {
  std::unique_lock lock(mu_);
  return !wake_.wait_for(lock, period, [this] { return stop_; });
}

namespace {

// The replicas behind `join_through` ("HOST:PORT,..."), each "IP:PORT": every address
// its name resolves to (IPv4 and IPv6), or the address as written when it does not
// resolve (the call then fails and the next round resolves again).
std::vector<std::string> ResolveReplicas(const std::string& join_through) {
  std::vector<std::string> out;
  for (absl::string_view address : absl::StrSplit(join_through, ',')) {
    absl::StatusOr<common::HostPort> parsed = common::ParseHostPort("--join-through", address);
    if (!parsed.ok() || parsed->kind != common::HostPort::Kind::kHostname) {
      out.emplace_back(address);
      continue;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(parsed->host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) {
      out.emplace_back(address);
      continue;
    }
    for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
      char ip[INET6_ADDRSTRLEN] = {};
      common::HostPort target{"", parsed->port, common::HostPort::Kind::kIPv4};
      if (a->ai_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(a->ai_addr)->sin_addr, ip, sizeof ip);
      } else if (a->ai_family == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(a->ai_addr)->sin6_addr, ip, sizeof ip);
        target.kind = common::HostPort::Kind::kIPv6;
      } else {
        continue;
      }
      target.host = ip;
      std::string text = target.ToString();
      if (absl::c_find(out, text) == out.end()) out.push_back(std::move(text));
    }
    freeaddrinfo(found);
  }
  return out;
}

}  // namespace

grpc::Status ReplicaJoiner::Call(cohort::v1::ReplicaPeers::Stub& stub, const cohort::v1::JoinRequest& request,
                                 const std::string& challenge, std::string* issued) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
  if (!challenge.empty()) {
    ctx.AddMetadata(kJoinChallengeKey, challenge);
    ctx.AddMetadata(kJoinAuthKey, MakeJoinProof(secret_, challenge, request));
  }
  {
    std::lock_guard lock(mu_);
    if (stop_) return grpc::Status(grpc::StatusCode::CANCELLED, "stopped");
    call_ = &ctx;
  }
  cohort::v1::JoinResponse response;
  const grpc::Status status = stub.Join(&ctx, request, &response);
  {
    std::lock_guard lock(mu_);
    call_ = nullptr;
  }
  const auto it = ctx.GetServerTrailingMetadata().find(kJoinChallengeKey);
  if (issued != nullptr && it != ctx.GetServerTrailingMetadata().end()) {
    issued->assign(it->second.data(), std::min<std::size_t>(it->second.size(), 128));
  }
  return status;
}

grpc::Status ReplicaJoiner::Ask(cohort::v1::ReplicaPeers::Stub& stub, const cohort::v1::JoinRequest& request) {
  // A replica without a secret answers the first call; one with a secret refuses it
  // with a challenge, which the second call answers.
  std::string challenge;
  const grpc::Status status = Call(stub, request, "", &challenge);
  if (secret_.empty() || status.error_code() != grpc::StatusCode::UNAUTHENTICATED || challenge.empty()) {
    return status;
  }
  return Call(stub, request, challenge, nullptr);
}

void ReplicaJoiner::Run() {
  // A channel per replica (pick_first on one address): a challenge and its answer go to
  // the same replica. Kept across rounds while the names resolve to the same replicas.
  std::map<std::string, std::unique_ptr<cohort::v1::ReplicaPeers::Stub>> stubs;
  cohort::v1::JoinRequest request;
  request.set_id(self_.id);
  request.set_address(self_.address);
  kLog.Info("asking the group to add this replica",
            {{"id", absl::StrCat(self_.id)}, {"address", self_.address}, {"through", join_through_}});
  const absl::Time start = absl::Now();
  std::chrono::milliseconds backoff = kRetryMin;
  grpc::StatusCode last = grpc::StatusCode::OK;
  std::vector<std::string> round;
  std::size_t next = 0;
  for (std::size_t attempt = 0;; ++attempt) {
    if (is_voter_()) {
      kLog.Info("joined the group as a voter (added by another request)",
                {{"took", absl::FormatDuration(absl::Now() - start)}});
      break;
    }
    if (next == round.size()) {
      round = ResolveReplicas(join_through_);
      next = 0;
    }
    const std::string& target = round[next++];
    std::unique_ptr<cohort::v1::ReplicaPeers::Stub>& stub = stubs[target];
    if (stub == nullptr) {
      stub = cohort::v1::ReplicaPeers::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    }
    const grpc::Status status = Ask(*stub, request);
    if (status.error_code() == grpc::StatusCode::CANCELLED) {
      std::lock_guard lock(mu_);
      if (stop_) break;
    }
    if (status.ok()) {
      kLog.Info("joined the group as a voter", {{"id", absl::StrCat(self_.id)},
                                                 {"took", absl::FormatDuration(absl::Now() - start)},
                                                 {"attempts", absl::StrCat(attempt + 1)}});
      break;
    }
    const bool no_leader = status.error_code() == grpc::StatusCode::UNAVAILABLE;
    if (status.error_code() != last) {
      kLog.Log(no_leader ? log::Level::kInfo : log::Level::kWarn, "not added to the group yet: asking again",
               {{"replica", target},
                {"status", absl::StrCat(rpc::CodeName(status.error_code()), ": ", status.error_message())}},
               log::CallSite::Here());
      last = status.error_code();
    }
    // Without a leader: the next replica at once-ish, and after each round over all of
    // them a longer pause (an election takes 1-2 s). Any other refusal: kRetryMax.
    std::chrono::milliseconds pause = kRetryMax;
    if (no_leader && next < round.size()) {
      pause = kRetryMin;
    } else if (no_leader) {
      pause = backoff;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(kRetryMax));
    }
    if (!Wait(pause)) break;
  }
  metrics_.SetJoining(false);
}

}  // namespace cohort::broker
