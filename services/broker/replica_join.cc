#include "services/broker/replica_join.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
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
      now_(std::move(now)),
      leading_(std::move(leading)),
      add_(std::move(add)),
      metrics_(metrics) {}

grpc::Status ReplicaPeersService::Join(grpc::ServerContext* ctx, const cohort::v1::JoinRequest* req,
                                       cohort::v1::JoinResponse*) {
  absl::Status status = Authenticate(*ctx, *req);
  if (status.ok()) {
    status = Answer(*req);
  } else {
    kLog.Warn("replica join refused: no valid proof of the group's secret",
              {{"peer", ctx->peer().substr(0, 128)}, {"status", status.ToString()}});
  }
  metrics_.CountJoinRequest(std::string(rpc::CodeName(static_cast<int>(status.code()))));
  return rpc::ToGrpc(status);
}

absl::Status ReplicaPeersService::Authenticate(const grpc::ServerContext& ctx,
                                               const cohort::v1::JoinRequest& req) const {
  if (secret_.empty()) return absl::OkStatus();
  const auto value = [&](const char* key) -> std::optional<absl::string_view> {
    const auto it = ctx.client_metadata().find(key);
    if (it == ctx.client_metadata().end()) return std::nullopt;
    return absl::string_view(it->second.data(), it->second.size());
  };
  return CheckJoinProof(secret_, req, value(kJoinAuthKey), value(kJoinAuthTimeKey), now_());
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

void ReplicaJoiner::Run() {
  // One channel per address, each balancing its calls round-robin over what its name
  // resolves to (a headless Service's name: every replica), so that successive calls
  // reach successive replicas until one of them leads.
  std::vector<std::unique_ptr<cohort::v1::ReplicaPeers::Stub>> stubs;
  for (absl::string_view address : absl::StrSplit(join_through_, ',')) {
    grpc::ChannelArguments args;
    args.SetLoadBalancingPolicyName("round_robin");
    stubs.push_back(cohort::v1::ReplicaPeers::NewStub(
        grpc::CreateCustomChannel(std::string(address), grpc::InsecureChannelCredentials(), args)));
  }
  cohort::v1::JoinRequest request;
  request.set_id(self_.id);
  request.set_address(self_.address);
  kLog.Info("asking the group to add this replica",
            {{"id", absl::StrCat(self_.id)}, {"address", self_.address}, {"through", join_through_}});
  const absl::Time start = absl::Now();
  std::chrono::milliseconds backoff = kRetryMin;
  grpc::StatusCode last = grpc::StatusCode::OK;
  for (std::size_t attempt = 0;; ++attempt) {
    if (is_voter_()) {
      kLog.Info("joined the group as a voter (added by another request)",
                {{"took", absl::FormatDuration(absl::Now() - start)}});
      break;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
    if (!secret_.empty()) {
      const JoinProof proof = MakeJoinProof(secret_, request, absl::Now());
      ctx.AddMetadata(kJoinAuthKey, proof.mac_hex);
      ctx.AddMetadata(kJoinAuthTimeKey, proof.unix_seconds);
    }
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      call_ = &ctx;
    }
    cohort::v1::JoinResponse response;
    const grpc::Status status = stubs[attempt % stubs.size()]->Join(&ctx, request, &response);
    {
      std::lock_guard lock(mu_);
      call_ = nullptr;
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
               {{"status", absl::StrCat(rpc::CodeName(status.error_code()), ": ", status.error_message())}},
               log::CallSite::Here());
      last = status.error_code();
    }
    // Without a leader: the next address at once-ish, and after each round over all of
    // them a longer pause (an election takes 1-2 s). Any other refusal: kRetryMax.
    std::chrono::milliseconds pause = kRetryMax;
    if (no_leader && (attempt + 1) % stubs.size() != 0) {
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
