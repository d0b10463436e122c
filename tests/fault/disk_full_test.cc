// The broker's data directory on a small tmpfs that fills up (the test mounts it and
// unmounts it; skipped with the reason where mounting is not permitted). Submits of
// large payloads run until one is refused; the refusal must be RESOURCE_EXHAUSTED or
// UNAVAILABLE, nothing acknowledged may be lost, and once space returns the broker
// serves again (after a restart if it stopped).
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fault/fault_cluster.h"
#include "tests/testing/runfiles.h"
#include "tests/testing/service_process.h"
#include "tests/testing/temp_dir.h"

namespace cohort::testing {
namespace {

constexpr char kSize[] = "size=16m";
constexpr size_t kBallastBytes = 9 << 20;  // leaves the broker a few MiB
constexpr std::uint64_t kMinFreeDisk = 2 << 20;  // the broker's --min-free-disk here
constexpr std::uint64_t kFreeAtRestart = 1536 << 10;  // below it

cohort::v1::JobSpec BigJob() {
  cohort::v1::JobSpec big;
  big.set_queue("default");
  big.set_kind("builtin.echo");
  big.set_payload(std::string(256 << 10, 'p'));
  return big;
}

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mount_point_ = dir_.Path("fs");
    ASSERT_EQ(mkdir(mount_point_.c_str(), 0700), 0);
    if (mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, kSize) != 0) {
      GTEST_SKIP() << "cannot mount a size-limited tmpfs at " << mount_point_ << ": " << strerror(errno)
                   << " (needs root / CAP_SYS_ADMIN in this mount namespace)";
    }
    mounted_ = true;
    // Ballast: deleting it is "space returns".
    const int fd = open(Ballast().c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    std::string block(1 << 20, 'b');
    for (size_t written = 0; written < kBallastBytes; written += block.size()) {
      ASSERT_EQ(write(fd, block.data(), block.size()), static_cast<ssize_t>(block.size()));
    }
    close(fd);
  }

  void TearDown() override {
    broker_.reset();  // kills it, so nothing holds the mount
    if (mounted_) {
      EXPECT_EQ(umount2(mount_point_.c_str(), MNT_DETACH), 0) << strerror(errno);
    }
  }

  std::string Ballast() const { return mount_point_ + "/ballast"; }

  // Writes a second ballast file until the filesystem has at most `free` bytes free.
  void TopUpUntilFree(std::uint64_t free) {
    const int fd = open((mount_point_ + "/top-up").c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0600);
    ASSERT_GE(fd, 0);
    const std::string block(64 << 10, 't');
    while (true) {
      struct statvfs fs {};
      ASSERT_EQ(statvfs(mount_point_.c_str(), &fs), 0);
      if (static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize <= free) break;
      ASSERT_EQ(write(fd, block.data(), block.size()), static_cast<ssize_t>(block.size()));
    }
    close(fd);
  }
  std::string DataDir() const { return mount_point_ + "/broker"; }

  // --min-free-disk scaled to this small filesystem (its default is 64 MiB): a few
  // MiB stay free for what work already accepted and a restart need.
  absl::StatusOr<std::unique_ptr<ServiceProcess>> StartBroker() {
    std::vector<std::string> args = BrokerArgs(DataDir());
    args.push_back("--min-free-disk=" + std::to_string(kMinFreeDisk));
    return ServiceProcess::Start(BinaryPath("services/broker/cohort-broker"), args, absl::Seconds(20));
  }

  TempDir dir_{"disk-full"};
  std::string mount_point_;
  bool mounted_ = false;
  std::unique_ptr<ServiceProcess> broker_;
};

// 256 KiB payloads until the disk is full and a Submit is refused. Returns the ids
// acknowledged before the refusal; `refusal` is the refused call's status.
std::vector<std::string> FillUntilRefused(cohort::v1::Broker::Stub& stub, grpc::Status* refusal) {
  std::vector<std::string> acknowledged;
  cohort::v1::JobSpec big = BigJob();
  for (int i = 0; i < 200 && refusal->ok(); ++i) {
    cohort::v1::SubmitRequest req;
    *req.add_jobs() = big;
    cohort::v1::SubmitResponse resp;
    auto ctx = Deadline(std::chrono::seconds(10));
    *refusal = stub.Submit(ctx.get(), req, &resp);
    if (refusal->ok()) acknowledged.push_back(resp.job_ids(0));
  }
  return acknowledged;
}

// Every id in `ids` is found; reports each one that is not.
void ExpectAllFound(cohort::v1::Broker::Stub& stub, const std::vector<std::string>& ids) {
  for (const std::string& id : ids) {
    cohort::v1::GetJobRequest req;
    req.set_job_id(id);
    cohort::v1::GetJobResponse resp;
    auto ctx = Deadline(std::chrono::seconds(10));
    grpc::Status status = stub.GetJob(ctx.get(), req, &resp);
    EXPECT_TRUE(status.ok()) << "acknowledged job " << id << " is not served: " << status.error_code() << " "
                             << status.error_message();
  }
}

TEST_F(DiskFullTest, AFullDiskRefusesSubmitsLosesNothingAcknowledgedAndTheBrokerServesOnceSpaceReturns) {
  auto started = StartBroker();
  ASSERT_TRUE(started.ok()) << started.status();
  broker_ = std::move(*started);
  auto stub = BrokerStub(broker_->grpc_address());

  grpc::Status refusal;
  std::vector<std::string> acknowledged = FillUntilRefused(*stub, &refusal);
  ASSERT_FALSE(refusal.ok()) << "200 submits of 256 KiB fit on a " << kSize << " tmpfs";
  std::cout << acknowledged.size() << " submits acknowledged before the refusal: " << refusal.error_code() << " "
            << refusal.error_message() << std::endl;
  EXPECT_TRUE(refusal.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              refusal.error_code() == grpc::StatusCode::UNAVAILABLE)
      << refusal.error_code() << " " << refusal.error_message();

  // A broker still up on the full disk keeps serving reads. (A refusal by a crash
  // comes with the process's exit: wait for it, bounded.)
  const absl::StatusOr<int> exited = broker_->Wait(absl::Seconds(2));
  const bool survived = !exited.ok() && exited.status().code() == absl::StatusCode::kDeadlineExceeded;
  std::cout << "with the disk full the broker " << (survived ? "kept running" : "stopped: ")
            << (survived ? "" : exited.status().ToString()) << std::endl;
  if (survived) ExpectAllFound(*stub, acknowledged);

  // Space returns; the broker serves again, after a restart on the same directory, and
  // has every acknowledged job.
  broker_.reset();
  ASSERT_EQ(unlink(Ballast().c_str()), 0);
  started = StartBroker();
  ASSERT_TRUE(started.ok()) << "the broker does not start again once space returned: " << started.status();
  broker_ = std::move(*started);
  stub = BrokerStub(broker_->grpc_address());
  ExpectAllFound(*stub, acknowledged);
  cohort::v1::JobSpec small = BigJob();
  small.set_payload("after");
  EXPECT_EQ(SubmitAll(*stub, {small}).size(), 1u) << "the broker does not take work once space returned";
}

// Not a crash loop: a broker (re)started while its disk is full comes up, serves what
// it has, and refuses writes with RESOURCE_EXHAUSTED or UNAVAILABLE. Before the
// free-space guard (--min-free-disk, DiskGuard) the broker aborted on its first failed
// commit and every restart on the full disk aborted inside RocksDB before the ready
// line: a crash loop with even reads down.
TEST_F(DiskFullTest, ABrokerRestartedOnAFullDiskServesReadsAndRefusesWrites) {
  auto started = StartBroker();
  ASSERT_TRUE(started.ok()) << started.status();
  broker_ = std::move(*started);
  auto stub = BrokerStub(broker_->grpc_address());
  grpc::Status refusal;
  std::vector<std::string> acknowledged = FillUntilRefused(*stub, &refusal);
  ASSERT_EQ(refusal.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refusal.error_message();

  broker_.reset();
  // Whatever the stopped broker's files gave back, the disk is below the broker's
  // --min-free-disk when it starts (with the few hundred KiB it needs to open).
  TopUpUntilFree(kFreeAtRestart);
  started = StartBroker();
  ASSERT_TRUE(started.ok()) << "restarted on a full disk, the broker does not come up: " << started.status();
  broker_ = std::move(*started);
  stub = BrokerStub(broker_->grpc_address());
  ExpectAllFound(*stub, acknowledged);
  // Opening gives space back (RocksDB's preallocated MANIFEST and old WAL): take it.
  TopUpUntilFree(kFreeAtRestart);
  cohort::v1::SubmitRequest req;
  *req.add_jobs() = BigJob();
  cohort::v1::SubmitResponse resp;
  auto ctx = Deadline(std::chrono::seconds(10));
  grpc::Status status = stub->Submit(ctx.get(), req, &resp);
  EXPECT_TRUE(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
              status.error_code() == grpc::StatusCode::UNAVAILABLE)
      << status.error_code() << " " << status.error_message();
  EXPECT_EQ(broker_->Wait(absl::Seconds(2)).status().code(), absl::StatusCode::kDeadlineExceeded)
      << "the refused write stopped the broker again";
}

}  // namespace
}  // namespace cohort::testing
