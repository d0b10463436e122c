// TLS and mutual TLS between real binaries, with certificates made by openssl in the
// test: every server over TLS, the executor's and scheduler's channels to a TLS broker,
// what a client without the right trust or identity gets, a client certificate as a
// credential, and a certificate rotated under a running broker (new connections see
// it, an executor's stream opened before keeps running).
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "libs/auth/channel_credentials.h"
#include "libs/auth/token_store.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.grpc.pb.h"
#include "tests/security/certs.h"
#include "tests/testing/run_to_exit.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

using cohort::v1::Broker;

grpc::Status ListQueues(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = Broker::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  cohort::v1::ListQueuesResponse response;
  return stub->ListQueues(&ctx, cohort::v1::ListQueuesRequest(), &response);
}

auth::ClientSecurityOptions Trusting(const std::string& ca, const std::string& cert = "", const std::string& key = "") {
  auth::ClientSecurityOptions options;
  options.tls_ca = ca;
  options.tls_cert = cert;
  options.tls_key = key;
  return options;
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address, const auth::ClientSecurityOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = auth::MakeChannel(address, options);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return channel.ok() ? *channel : nullptr;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = TestCa::Create(dir_.path(), "ca");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCa>(*std::move(ca));
    auto other = TestCa::Create(dir_.path(), "other-ca");
    ASSERT_TRUE(other.ok()) << other.status();
    other_ca_ = std::make_unique<TestCa>(*std::move(other));
    auto server = ca_->Issue("broker", "broker");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *server;
    auto client = ca_->Issue("client", "client");
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *client;
  }

  void StartBroker(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0",
                                     "--data-dir=" + dir_.path() + "/broker"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto started = ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args);
    ASSERT_TRUE(started.ok()) << started.status();
    broker_ = std::move(*started);
  }

  TempDir dir_;
  std::unique_ptr<TestCa> ca_, other_ca_;
  CertFiles server_, client_;
  std::unique_ptr<ServiceProcess> broker_;
};

// A health check over `channel` (no credential needed): OK when the server answered.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1), response;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&](grpc::Status s) {
                   status = std::move(s);
                   done.Notify();
                 });
  done.WaitForNotification();
  return status;
}

TEST_F(TlsTest, APlaintextClientCannotTalkToATlsBroker) {
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key});
  auto plaintext = grpc::CreateChannel(broker_->grpc_address(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(ListQueues(plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(), Trusting(ca_->cert()))).error_code(), grpc::StatusCode::OK);
}

TEST_F(TlsTest, AClientTrustingAnotherCaRefusesTheBroker) {
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key});
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(), Trusting(other_ca_->cert()))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, AnMtlsBrokerRefusesAClientWithoutACertificate) {
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key, "--tls-client-ca=" + ca_->cert()});
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(), Trusting(ca_->cert()))).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(),
                               Trusting(ca_->cert(), client_.cert, client_.key)))
                .error_code(),
            grpc::StatusCode::OK);
}

TEST_F(TlsTest, AnMtlsBrokerRefusesACertificateFromAnotherCa) {
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key, "--tls-client-ca=" + ca_->cert()});
  auto stranger = other_ca_->Issue("stranger", "stranger");
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(),
                               Trusting(ca_->cert(), stranger->cert, stranger->key)))
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

// Every gRPC server (scheduler, executor health, cohort-dev; the broker above) takes
// the same TLS flags and then answers over TLS only; the executor, given the CA,
// connects to a TLS broker (the scheduler's channel: the next test).
TEST_F(TlsTest, EveryServerServesTlsAndTheServicesReachATlsBroker) {
  const std::vector<std::string> tls = {"--tls-cert=" + server_.cert, "--tls-key=" + server_.key};
  StartBroker(tls);
  const std::vector<std::string> to_broker = {"--broker=" + broker_->grpc_address(), "--broker-tls-ca=" + ca_->cert()};
  struct Server {
    const char* binary;
    std::vector<std::string> args;
  };
  std::vector<Server> servers = {
      {"services/scheduler/cohort-scheduler", {"--data-dir=" + dir_.path() + "/scheduler"}},
      {"services/executor/cohort-executor", {"--capacity=1", "--executor-id=tls-executor"}},
      {"services/dev/cohort-dev", {"--data-dir=" + dir_.path() + "/dev", "--console-listen="}},
  };
  std::vector<std::unique_ptr<ServiceProcess>> started;
  for (Server& server : servers) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0"};
    args.insert(args.end(), tls.begin(), tls.end());
    if (std::string(server.binary) != "services/dev/cohort-dev") {
      args.insert(args.end(), to_broker.begin(), to_broker.end());
    }
    args.insert(args.end(), server.args.begin(), server.args.end());
    auto process = ServiceProcess::Start(BinaryPath(server.binary), args);
    ASSERT_TRUE(process.ok()) << server.binary << ": " << process.status();
    started.push_back(std::move(*process));
  }
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const std::string& address = started[i]->grpc_address();
    EXPECT_EQ(HealthCheck(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())).error_code(),
              grpc::StatusCode::UNAVAILABLE)
        << servers[i].binary;
    grpc::Status s = HealthCheck(Channel(address, Trusting(ca_->cert())));
    EXPECT_TRUE(s.ok()) << servers[i].binary << ": " << s.error_message();
  }
  // The executor reached the broker over TLS: it is connected.
  auto stub = Broker::NewStub(Channel(broker_->grpc_address(), Trusting(ca_->cert())));
  cohort::v1::ListExecutorsResponse executors;
  for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
    grpc::ClientContext ctx;
    executors.Clear();
    ASSERT_TRUE(stub->ListExecutors(&ctx, {}, &executors).ok());
    if (executors.executors_size() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the broker
  }
  ASSERT_EQ(executors.executors_size(), 1);
  EXPECT_EQ(executors.executors(0).executor_id(), "tls-executor");
}

// The scheduler's channel to a TLS broker, with its token: a triggered schedule's job
// reaches the broker, submitted by the scheduler's principal.
TEST_F(TlsTest, TheSchedulerSubmitsToATlsBrokerWithItsToken) {
  const std::string tokens = dir_.path() + "/tokens";
  std::ofstream(tokens) << auth::TokenFileLine("root", auth::Principal{"root", *auth::ParseScopes("*"), "", {}}) << "\n"
                        << auth::TokenFileLine("scheduler-token", auth::Principal{"scheduler",
                                                                                  *auth::ParseScopes("read,submit,release"),
                                                                                  "", {}})
                        << "\n";
  std::ofstream(dir_.path() + "/scheduler.token") << "scheduler-token\n";
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key, "--auth-tokens=" + tokens});
  auto scheduler = ServiceProcess::Start(
      BinaryPath("services/scheduler/cohort-scheduler"),
      {"--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--data-dir=" + dir_.path() + "/scheduler",
       "--broker=" + broker_->grpc_address(), "--broker-tls-ca=" + ca_->cert(),
       "--broker-token-file=" + dir_.path() + "/scheduler.token"});
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto schedules = cohort::v1::Scheduler::NewStub(
      grpc::CreateChannel((*scheduler)->grpc_address(), grpc::InsecureChannelCredentials()));
  cohort::v1::CreateScheduleRequest create;
  create.set_schedule_id("hourly");
  create.mutable_spec()->mutable_job()->set_kind("builtin.noop");
  create.mutable_spec()->mutable_job()->set_queue("default");
  create.mutable_spec()->mutable_interval()->set_seconds(3600);
  cohort::v1::CreateScheduleResponse created;
  {
    grpc::ClientContext ctx;
    grpc::Status s = schedules->CreateSchedule(&ctx, create, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  cohort::v1::TriggerScheduleRequest trigger;
  trigger.set_schedule_id("hourly");
  cohort::v1::TriggerScheduleResponse triggered;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = schedules->TriggerSchedule(&ctx, trigger, &triggered);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  auth::ClientSecurityOptions root = Trusting(ca_->cert());
  root.token = "root";
  auto broker = Broker::NewStub(Channel(broker_->grpc_address(), root));
  cohort::v1::GetJobRequest get;
  get.set_job_id(triggered.job_id());
  cohort::v1::GetJobResponse job;
  grpc::ClientContext ctx;
  grpc::Status s = broker->GetJob(&ctx, get, &job);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(job.job().submitted_by(), "scheduler");
}

// With mTLS, a `cn:` line of the token file grants a client certificate's common name:
// the certificate is the credential, held to that line's scopes; a certificate the CA
// signed for a name the file does not grant gets in by TLS but may call nothing.
TEST_F(TlsTest, AClientCertificateIsACredentialHeldToItsScopes) {
  const std::string tokens = dir_.path() + "/tokens";
  std::ofstream(tokens) << "cn:client principal=cert-client scopes=read\n";
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key, "--tls-client-ca=" + ca_->cert(),
               "--auth-tokens=" + tokens});
  auto granted = Channel(broker_->grpc_address(), Trusting(ca_->cert(), client_.cert, client_.key));
  EXPECT_EQ(ListQueues(granted).error_code(), grpc::StatusCode::OK);
  auto stub = Broker::NewStub(granted);
  cohort::v1::SubmitRequest submit;
  submit.add_jobs()->set_kind("builtin.noop");
  submit.mutable_jobs(0)->set_queue("default");
  cohort::v1::SubmitResponse submitted;
  grpc::ClientContext ctx;
  grpc::Status refused = stub->Submit(&ctx, submit, &submitted);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(refused.error_message().find("principal \"cert-client\" lacks scope submit"), std::string::npos)
      << refused.error_message();

  auto unknown = ca_->Issue("not-in-the-file", "unknown-client");
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  grpc::Status s = ListQueues(Channel(broker_->grpc_address(), Trusting(ca_->cert(), unknown->cert, unknown->key)));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << s.error_message();
}

// TLS 1.2 is the minimum (gRPC's default for these credentials): openssl's client,
// told to speak TLS 1.1 and allowed its old ciphers, gets no session.
TEST_F(TlsTest, TheBrokerRefusesTlsOlderThanOnePointTwo) {
  StartBroker({"--tls-cert=" + server_.cert, "--tls-key=" + server_.key});
  auto handshake = [&](const std::string& version) {
    absl::StatusOr<Exited> run =
        RunToExit("/usr/bin/openssl", {"s_client", "-connect", broker_->grpc_address(), version, "-cipher",
                                       "DEFAULT:@SECLEVEL=0", "-alpn", "h2", "-CAfile", ca_->cert()});
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? run->stdout_text : "";
  };
  EXPECT_NE(handshake("-tls1_2").find("New, TLSv1.2"), std::string::npos);
  EXPECT_NE(handshake("-tls1_1").find("New, (NONE), Cipher is (NONE)"), std::string::npos);
}

// Kubernetes rotates a Secret by pointing a symlink at a new directory; the broker
// serves the new certificate to new connections without a restart, and the executor's
// stream, opened before, keeps running jobs.
TEST_F(TlsTest, ARotatedCertificateReachesNewConnectionsWhileAnOpenExecutorStreamKeepsRunning) {
  namespace fs = std::filesystem;
  const fs::path secret = fs::path(dir_.path()) / "secret";
  fs::create_directories(secret / "v1");
  fs::copy_file(server_.cert, secret / "v1" / "tls.crt");
  fs::copy_file(server_.key, secret / "v1" / "tls.key");
  fs::create_directory_symlink("v1", secret / "current");
  StartBroker({"--tls-cert=" + (secret / "current" / "tls.crt").string(),
               "--tls-key=" + (secret / "current" / "tls.key").string(), "--tls-reload-interval=1s"});
  auto executor = ServiceProcess::Start(
      BinaryPath("services/executor/cohort-executor"),
      {"--broker=" + broker_->grpc_address(), "--broker-tls-ca=" + ca_->cert(), "--listen=127.0.0.1:0",
       "--metrics-listen=127.0.0.1:0", "--capacity=1", "--executor-id=exec-before-rotation"});
  ASSERT_TRUE(executor.ok()) << executor.status();

  auto old_trust = Channel(broker_->grpc_address(), Trusting(ca_->cert()));
  auto stub = Broker::NewStub(old_trust);
  cohort::v1::ListExecutorsResponse before;
  for (absl::Time end = absl::Now() + absl::Seconds(30); before.executors_size() == 0 && absl::Now() < end;) {
    grpc::ClientContext ctx;
    before.Clear();
    ASSERT_TRUE(stub->ListExecutors(&ctx, {}, &before).ok());
    if (before.executors_size() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling the broker
  }
  ASSERT_EQ(before.executors_size(), 1);

  // Rotate to a certificate from another CA, so that who sees which one is visible.
  auto rotated = other_ca_->Issue("broker", "broker-rotated");
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  fs::create_directories(secret / "v2");
  fs::copy_file(rotated->cert, secret / "v2" / "tls.crt");
  fs::copy_file(rotated->key, secret / "v2" / "tls.key");
  fs::create_directory_symlink("v2", secret / "current.new");
  fs::rename(secret / "current.new", secret / "current");

  // New connections get the new certificate: a client trusting only the new CA gets in.
  grpc::Status with_new_trust;
  for (absl::Time end = absl::Now() + absl::Seconds(30); absl::Now() < end;) {
    with_new_trust = ListQueues(Channel(broker_->grpc_address(), Trusting(other_ca_->cert())));
    if (with_new_trust.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the broker re-reads files every 1 s
  }
  ASSERT_TRUE(with_new_trust.ok()) << with_new_trust.error_message();
  EXPECT_EQ(ListQueues(Channel(broker_->grpc_address(), Trusting(ca_->cert()))).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  // The executor trusts only the old CA, so it can only be running this job over the
  // stream it opened before the rotation.
  auto new_stub = Broker::NewStub(Channel(broker_->grpc_address(), Trusting(other_ca_->cert())));
  cohort::v1::SubmitRequest submit;
  submit.add_jobs()->set_kind("builtin.echo");
  submit.mutable_jobs(0)->set_queue("default");
  submit.mutable_jobs(0)->set_payload("after rotation");
  cohort::v1::SubmitResponse submitted;
  {
    grpc::ClientContext ctx;
    grpc::Status s = new_stub->Submit(&ctx, submit, &submitted);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  cohort::v1::WaitForRequest wait;
  wait.set_job_id(submitted.job_ids(0));
  wait.mutable_timeout()->set_seconds(30);
  cohort::v1::WaitForResponse waited;
  {
    grpc::ClientContext ctx;
    grpc::Status s = new_stub->WaitFor(&ctx, wait, &waited);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_EQ(waited.result(), "after rotation");
  cohort::v1::ListExecutorsResponse after;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(new_stub->ListExecutors(&ctx, {}, &after).ok());
  }
  ASSERT_EQ(after.executors_size(), 1);
  EXPECT_EQ(after.executors(0).connect_time().seconds(), before.executors(0).connect_time().seconds());
  EXPECT_EQ(after.executors(0).connect_time().nanos(), before.executors(0).connect_time().nanos());
}

}  // namespace
}  // namespace cohort::testing
