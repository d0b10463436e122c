// Watch's contract against the real broker: OUT_OF_RANGE past the end of the log,
// FAILED_PRECONDITION for a sequence that --event-retention has trimmed, and bounded
// memory for streams whose clients never read (and a SIGTERM that still stops it).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"
#include "tests/broker_fixture.h"

namespace cohort::testing {
namespace {

using namespace std::chrono_literals;

class WatchTest : public BrokerTest {
 protected:
  // The first batch of a Watch from `after`, or the status the stream ended with.
  struct FirstBatch {
    std::optional<cohort::v1::WatchResponse> batch;
    grpc::Status status;
  };
  FirstBatch WatchFrom(std::int64_t after) {
    cohort::v1::WatchRequest req;
    req.set_after_sequence(after);
    auto ctx = Context(10s);
    auto reader = stub().Watch(ctx.get(), req);
    cohort::v1::WatchResponse batch;
    FirstBatch first;
    if (reader->Read(&batch)) {
      first.batch = batch;
      ctx->TryCancel();
    }
    first.status = reader->Finish();
    return first;
  }
};

// VmRSS of a process, in bytes.
std::int64_t RssBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, " kB");
    std::int64_t kb = 0;
    if (absl::SimpleAtoi(rest, &kb)) return kb * 1024;
  }
  ADD_FAILURE() << "no VmRSS for pid " << pid;
  return 0;
}

TEST_F(WatchTest, AnAfterSequenceBeyondTheEndOfTheLogIsOutOfRange) {
  Submit({Spec()});  // the log holds sequence 1
  FirstBatch first = WatchFrom(1000);
  EXPECT_FALSE(first.batch.has_value());
  EXPECT_EQ(first.status.error_code(), grpc::StatusCode::OUT_OF_RANGE) << first.status.error_message();
  // The end itself is fine: the stream waits for the next event.
  FirstBatch at_end = WatchFrom(0);
  ASSERT_TRUE(at_end.batch.has_value());
  EXPECT_EQ(at_end.batch->events(0).sequence(), 1);
}

TEST_F(WatchTest, ASequenceTrimmedByEventRetentionIsFailedPreconditionAndZeroStartsAtTheOldestKept) {
  StartBroker({"--event-retention=1s"});
  for (int i = 0; i < 3; ++i) Submit({Spec()});  // sequences 1, 2, 3: three commits
  // Retention trims every event older than a second but the newest; the oldest event
  // a Watch from 0 gets is the event that shows it (bounded wait).
  std::int64_t oldest = 0;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (oldest != 3 && std::chrono::steady_clock::now() < give_up) {
    FirstBatch first = WatchFrom(0);
    ASSERT_TRUE(first.batch.has_value()) << first.status.error_message();
    oldest = first.batch->events(0).sequence();
  }
  ASSERT_EQ(oldest, 3) << "retention never trimmed events 1 and 2";
  FirstBatch gap = WatchFrom(1);  // event 2 is gone
  EXPECT_FALSE(gap.batch.has_value());
  EXPECT_EQ(gap.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << gap.status.error_message();
  FirstBatch no_gap = WatchFrom(2);  // nothing after 2 is missing
  ASSERT_TRUE(no_gap.batch.has_value()) << no_gap.status.error_message();
  EXPECT_EQ(no_gap.batch->events(0).sequence(), 3);
}

TEST_F(WatchTest, WatchStreamsThatNeverReadKeepTheBrokersMemoryBoundedAndSigtermStillStopsIt) {
  // A log of about 32 MB: 4,000 events of about 8 KiB (a job with 32 large labels).
  // (Small enough that 256 of them fit in a default client's 4 MiB message.)
  cohort::v1::JobSpec big = Spec();
  for (int i = 0; i < 32; ++i) (*big.mutable_labels())["k" + std::to_string(i)] = std::string(240, 'v');
  for (int batch = 0; batch < 20; ++batch) Submit(std::vector<cohort::v1::JobSpec>(200, big));
  const std::int64_t before = RssBytes(broker_->pid());

  // 50 clients start watching from the beginning and never read.
  constexpr int kStreams = 50;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<cohort::v1::WatchResponse>>> readers;
  cohort::v1::WatchRequest req;
  for (int i = 0; i < kStreams; ++i) {
    contexts.push_back(Context(120s));
    readers.push_back(stub().Watch(contexts.back().get(), req));
  }
  // Measure for a few seconds while the broker fills what it buffers for them. (This
  // samples a figure; it does not synchronise anything.)
  std::int64_t peak = before;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    peak = std::max(peak, RssBytes(broker_->pid()));
    std::this_thread::sleep_for(100ms);
  }
  // Unbounded, the streams buffer the log many times over (625 MiB measured); bounded,
  // a stream holds at most three 64 KiB messages (18 MiB measured for all 50).
  const std::int64_t grown = peak - before;
  RecordProperty("rss_growth_mb", static_cast<int>(grown >> 20));
  EXPECT_LT(grown, std::int64_t{150} << 20) << "broker RSS grew by " << (grown >> 20) << " MiB for " << kStreams
                                            << " idle Watch streams";

  // The clients leave; SIGTERM stops the broker promptly and cleanly.
  for (auto& ctx : contexts) ctx->TryCancel();
  for (auto& reader : readers) reader->Finish().error_code();
  absl::StatusOr<int> exit = broker_->Terminate(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_EQ(*exit, 0);
}

}  // namespace
}  // namespace cohort::testing
