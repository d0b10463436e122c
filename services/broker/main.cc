// cohort-broker: Cohort's source of truth. See README.md and design.md ("Broker").
#include <cstdio>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "libs/auth/server_flags.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_parse.h"
#include "libs/common/address.h"
#include "libs/common/fatal.h"
#include "libs/common/flag_names.h"
#include "libs/common/log.h"
#include "libs/common/log_flags.h"
#include "libs/common/metrics.h"
#include "libs/common/ready_line.h"
#include "libs/common/signals.h"
#include "libs/replication/peer_secret.h"
#include "libs/rpc/server.h"
#include "libs/runtime/runtime.h"
#include "services/broker/broker_app.h"
#include "services/broker/broker_flags.h"
#include "services/broker/replica.h"
#include "services/broker/replica_admin_service.h"
#include "services/broker/replica_config.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "gRPC address, HOST:PORT (port 0 picks a free port; off loopback needs TLS or --insecure)");
ABSL_FLAG(std::string, data_dir, cohort::broker::BrokerAppOptions{}.data_dir, "RocksDB directory (created if missing)");
ABSL_FLAG(std::string, metrics_listen, "127.0.0.1:9470", "/metrics address, HOST:PORT (port 0 picks a free port)");
ABSL_FLAG(std::int64_t, replica_id, 0,
          "replicated mode (with --replicas): this broker's id in its group; 0: a single broker");
ABSL_FLAG(std::string, replica_pod_name, "",
          "replicated mode, instead of --replica-id: this StatefulSet pod's name (e.g. $(POD_NAME)); the replica id "
          "is the ordinal it ends with plus one (NAME-0 is replica 1)");
ABSL_FLAG(bool, join, false,
          "replicated mode: this replica is being added to a running group: it never bootstraps a configuration of "
          "its own and copies the leader's log or snapshot; with --join-through it asks to be added itself, else "
          "run cohortctl replicas add (implied when --replicas does not list --replica-id)");
ABSL_FLAG(std::string, replica_address, "",
          "replicated mode: this replica's raft address HOST:PORT when --replicas (the group it starts with) does "
          "not list it: it then joins the group (as --join); if listed, it must be the listed address");
ABSL_FLAG(std::string, join_through, "",
          "replicated mode: the replica asks the group's leader to add it through these --health-listen addresses "
          "(HOST:PORT, a comma-separated list, or a name resolving to every replica): a joining one (--join, or "
          "not in --replicas) until it is a voter; one with a log, or of the starting group, until the leader "
          "answers OK (at once for a member), so that one removed from the group and started again, with its "
          "volume or with an empty one, is added back");
ABSL_FLAG(std::string, replicas, "",
          "replicated mode: every replica of the group as ID=HOST:PORT,... (their raft addresses, this one's "
          "included); only the leader listens on --listen (a fixed port), so clients are given every replica's "
          "--listen address; a leader that loses leadership exits with code 75 and rejoins as a follower when "
          "restarted");
ABSL_FLAG(bool, store_digest, false,
          "replicated mode: print \"applied_index=N digest=HEX\" for the replica store under --data-dir and exit (the "
          "replica stopped); replicas that applied the same entries print the same line");
ABSL_FLAG(std::string, health_listen, "",
          "replicated mode: serve grpc.health.v1 on HOST:PORT, without TLS (kubelet's gRPC probe speaks none): "
          "SERVING while this replica leads, or follows a leader heard within the last 3 s and has applied its "
          "commit index to within --ready-max-lag-entries; NOT_SERVING otherwise (the readiness probe); empty: off");
ABSL_FLAG(std::int64_t, ready_max_lag_entries, cohort::broker::ReadinessRule{}.max_lag_entries,
          "replicated mode: a follower this many raft entries or fewer behind the leader's commit index counts as "
          "caught up (Ready, --health-listen SERVING); 1..100000000");
ABSL_FLAG(std::int64_t, raft_max_entry_commits, cohort::broker::ReplicaConfig{}.max_entry_commits,
          "replicated mode: at most this many concurrent commits share one raft entry (1: one entry per commit); "
          "1..4096");
ABSL_FLAG(std::string, replica_secret_file, "",
          "replicated mode: a file holding the group's shared secret (32 to 4096 bytes, one trailing newline "
          "ignored; e.g. `openssl rand -base64 48`), the same on every replica: raft connections and join requests "
          "must prove it. Empty: replica traffic is unauthenticated (a warning is logged)");
ABSL_FLAG(std::string, raft_dir, "",
          "replicated mode: the raft log's directory (default: <--data-dir>/raft; the jobs are then in "
          "<--data-dir>/jobs)");

namespace cohort::broker {
namespace {

constexpr char kProgram[] = "cohort-broker";
const log::Logger kLog("broker");

[[noreturn]] void Die(const std::string& reason) { common::Die(kProgram, reason); }

template <typename T>
T OrDie(absl::StatusOr<T> value) {
  return common::OrDie(kProgram, std::move(value));
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cohort-broker: durable priority queues, leases and asyncio-style waits over gRPC");
  common::ShowFlagsDefinedIn({"services/broker/", "libs/auth/server_flags", log::kLogFlagsFile});
  common::DashedArgs args(argc, argv);
  common::ParseFlagsOrExit(kProgram, args.argc(), args.argv());
  if (absl::Status s = log::ConfigureFromFlags(); !s.ok()) Die(std::string(s.message()));
  common::HostPort listen = OrDie(common::ParseHostPort("--listen", absl::GetFlag(FLAGS_listen)));
  common::HostPort metrics_listen =
      OrDie(common::ParseHostPort("--metrics-listen", absl::GetFlag(FLAGS_metrics_listen)));
  BrokerAppOptions options = BrokerOptionsFromFlags(absl::GetFlag(FLAGS_data_dir));
  if (absl::GetFlag(FLAGS_store_digest)) {
    const std::string digest = OrDie(StoreDigest(ReplicaStoreDir(options.data_dir)));
    std::printf("%s\n", digest.c_str());
    return 0;
  }
  if (absl::Status valid = BrokerApp::Validate(options); !valid.ok()) Die(std::string(valid.message()));
  std::int64_t replica_id = absl::GetFlag(FLAGS_replica_id);
  if (const std::string pod = absl::GetFlag(FLAGS_replica_pod_name); !pod.empty()) {
    if (replica_id != 0) Die("give --replica-id or --replica-pod-name, not both");
    replica_id = OrDie(ReplicaIdFromPodName(pod));
  }
  std::optional<ReplicaConfig> replica_config =
      OrDie(ParseReplicaConfig(replica_id, absl::GetFlag(FLAGS_replicas), absl::GetFlag(FLAGS_raft_dir),
                               options.data_dir, absl::GetFlag(FLAGS_replica_address)));
  if (absl::GetFlag(FLAGS_join)) {
    if (!replica_config.has_value()) Die("--join needs --replica-id and --replicas");
    replica_config->join = true;
  }
  if (const std::string through = absl::GetFlag(FLAGS_join_through); !through.empty()) {
    if (!replica_config.has_value()) Die("--join-through needs --replica-id and --replicas");
    replica_config->join_through = OrDie(ParseJoinThrough(through));
  }
  if (!absl::GetFlag(FLAGS_replica_address).empty() && !replica_config.has_value()) {
    Die("--replica-address needs --replica-id and --replicas");
  }
  if (const std::string health = absl::GetFlag(FLAGS_health_listen); !health.empty()) {
    if (!replica_config.has_value()) Die("--health-listen needs --replica-id and --replicas");
    replica_config->health_listen = OrDie(common::ParseHostPort("--health-listen", health));
  }
  if (const std::int64_t lag = absl::GetFlag(FLAGS_ready_max_lag_entries); lag < 1 || lag > 100'000'000) {
    Die(absl::StrCat("--ready-max-lag-entries=", lag, " is out of range: use 1 to 100000000"));
  } else if (replica_config.has_value()) {
    replica_config->readiness.max_lag_entries = static_cast<std::uint64_t>(lag);
  }
  if (const std::int64_t commits = absl::GetFlag(FLAGS_raft_max_entry_commits); commits < 1 || commits > 4096) {
    Die(absl::StrCat("--raft-max-entry-commits=", commits, " is out of range: use 1 to 4096"));
  } else if (replica_config.has_value()) {
    replica_config->max_entry_commits = static_cast<std::size_t>(commits);
  }
  if (const std::string secret_file = absl::GetFlag(FLAGS_replica_secret_file); !secret_file.empty()) {
    if (!replica_config.has_value()) Die("--replica-secret-file needs --replica-id and --replicas");
    replica_config->peer_secret = OrDie(replication::ReadPeerSecretFile(secret_file));
  }
  if (replica_config.has_value() && listen.port == 0) {
    Die("--listen needs a fixed port with --replicas: clients are given every replica's address");
  }

  runtime::EventLoop loop;
  runtime::Event stop;
  // Before any other thread exists: signals are then blocked in every thread.
  // Replicated mode: the replica (opened below) learns of the stop at once, before the
  // engine's last commits, which a group stopping as a whole may not be able to make.
  std::unique_ptr<Replica> replica;
  auto signals = OrDie(common::SignalWatcher::Install(loop, [&](int) {
    if (replica != nullptr) replica->RequestStop();
    stop.Set();
  }));

  auto metrics_server = OrDie(common::MetricsServer::Start(metrics_listen));
  auto credentials =
      OrDie(auth::ServerCredentialsFromFlags(kProgram, "--listen", listen, metrics_server->registry(), "broker"));
  // Replicated mode: ready (the line below) once it has joined its group and serves
  // /metrics; the gRPC port listens only once it leads and has caught up.
  std::unique_ptr<BrokerApp> app;
  if (replica_config.has_value()) {
    replica = OrDie(Replica::Open(*replica_config, metrics_server->registry()));
    if (absl::Status s = common::PrintReadyLine(listen, metrics_server->address()); !s.ok()) Die(s.ToString());
    if (!runtime::RunUntilComplete(loop, replica->AwaitLeadership(loop, stop)).ok()) {
      kLog.Info("replica stopping (never led)", {{"data_dir", options.data_dir}});
      replica.reset();  // stops it while metrics_server, which holds its metrics, is alive
      return 0;
    }
    app = OrDie(BrokerApp::Create(loop, metrics_server->registry(), options, replica->Serve()));
  } else {
    app = OrDie(BrokerApp::Create(loop, metrics_server->registry(), options));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  app->AddTo(builder);
  std::unique_ptr<ReplicaAdminService> replica_admin;
  if (replica != nullptr) {
    replica_admin = std::make_unique<ReplicaAdminService>(loop, *replica, metrics_server->registry());
    builder.RegisterService(replica_admin.get());
  }
  rpc::StartedServer started = OrDie(rpc::StartServer(builder, listen, std::move(credentials)));
  std::unique_ptr<grpc::Server> server = std::move(started.server);
  if (replica == nullptr) {
    if (absl::Status s = common::PrintReadyLine(started.bound, metrics_server->address()); !s.ok()) Die(s.ToString());
  }

  kLog.Info("broker started", {{"grpc", started.bound.ToString()},
                               {"metrics", metrics_server->address().ToString()},
                               {"data_dir", options.data_dir}});

  // Run until SIGTERM/SIGINT, then stop at once (BrokerApp::Run: executors drained,
  // calls in flight end CANCELLED, commits in flight flushed) and exit 0. What was
  // acknowledged is durable; clients retry, with idempotency keys for Submit.
  runtime::RunUntilComplete(loop, app->Run(stop, [&server] { rpc::StopServer(*server); }));
  server->Wait();
  if (replica != nullptr) {
    app.reset();
    // Declared before metrics_server (the signal handler needs it), so it would be
    // destroyed after it, writing its metrics into a freed registry: stop it now.
    replica.reset();
  }
  return 0;
}

}  // namespace
}  // namespace cohort::broker

int main(int argc, char** argv) { return cohort::broker::Main(argc, argv); }
