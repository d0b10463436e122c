#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "libs/runtime/event_loop.h"
#include "libs/runtime/task.h"
#include "libs/runtime/task_group.h"
#include "libs/runtime/task_handle.h"
#include "libs/runtime/thread_pool.h"
#include "protos/cohort/v1/broker.grpc.pb.h"
#include "protos/cohort/v1/scheduler.pb.h"
#include "services/scheduler/cron/trigger.h"
#include "services/scheduler/schedule_store.h"
#include "services/scheduler/scheduler_metrics.h"

namespace cohort::scheduler {

// Limits of the Scheduler API.
struct ScheduleLimits {
  // Shortest interval a schedule may have.
  absl::Duration min_interval = absl::Seconds(1);
  std::size_t max_schedules = 10'000;
  int max_page_size = 1'000;
  int default_page_size = 100;
};

// The schedules: stored in a ScheduleStore, armed as timers on the loop, fired by
// submitting their job template to the broker. A slot fires at most once: its job
// carries the slot's idempotency key, and the slot is recorded only after the broker
// acknowledged the job, so a crash in between makes the restart re-submit the same key
// and get the same job. After downtime, missed slots follow the catch-up policy; a slot
// whose previous job has not ended follows the overlap policy. Every mutation is durable
// before it returns. Loop-only; the loop's clock is its one time source (slots are wall
// time, SystemNow; their timers monotonic), so a ManualClock moves both in tests.
//
// Logs at info what an operator follows: a slot fired (schedule and job id), skipped by
// the overlap policy, or missed slots caught up at start; never the job's payload.
class Schedules {
 public:
  Schedules(runtime::EventLoop& loop, ScheduleStore& store, cohort::v1::Broker::Stub& broker,
            SchedulerMetrics& metrics, ScheduleLimits limits);
  ~Schedules();
  Schedules(const Schedules&) = delete;
  Schedules& operator=(const Schedules&) = delete;

  // Schedules stored.
  std::size_t size() const { return entries_.size(); }
  // Loads every stored schedule (blocking; before the loop serves calls).
  absl::Status Load();
  // Plans the catch-up of the loaded schedules and arms their timers. On the loop.
  void Start();
  // Disarms every timer and waits for fires in flight to end.
  runtime::Task<void> Stop();

  runtime::Task<absl::StatusOr<cohort::v1::Schedule>> Create(std::string id, cohort::v1::ScheduleSpec spec);
  absl::StatusOr<cohort::v1::Schedule> Get(const std::string& id) const;
  absl::StatusOr<cohort::v1::ListSchedulesResponse> List(int page_size, const std::string& page_token) const;
  runtime::Task<absl::StatusOr<cohort::v1::Schedule>> Update(std::string id, cohort::v1::ScheduleSpec spec);
  runtime::Task<absl::Status> Delete(std::string id);
  runtime::Task<absl::StatusOr<cohort::v1::Schedule>> SetPaused(std::string id, bool paused);
  // Submits one job from the template now; returns its id.
  runtime::Task<absl::StatusOr<std::string>> TriggerNow(std::string id);

  // A job reached a terminal state (from the broker's event log): a slot buffered
  // behind it (OVERLAP_POLICY_BUFFER_ONE) fires now.
  void OnJobEnded(const std::string& job_id);
  // The broker's log is followed again after a gap: buffered slots re-check their job
  // (each check a task in a TaskGroup that Stop() cancels and joins).
  void OnResynced();

 private:
  struct Entry;

  runtime::Task<absl::Status> CheckTemplate(const std::string& id, const cohort::v1::ScheduleSpec& spec);
  runtime::Task<absl::Status> Persist(const Entry& entry);
  runtime::Task<void> PersistOrLog(const Entry& entry);
  // OnResynced's check of one job a slot is buffered behind.
  runtime::Task<void> RecheckBuffered(std::string job_id);
  void Arm(Entry& entry, absl::Time next_slot);
  void Disarm(Entry& entry);
  void OnTimer(const std::string& id, uint64_t generation);
  void Enqueue(Entry& entry, absl::Time slot);
  runtime::Task<void> FireLoop(std::string id, uint64_t generation);
  runtime::Task<void> FireSlot(std::string id, uint64_t generation, absl::Time slot);
  // The state of `job_id` at the broker: true if it has ended or is gone; nullopt while
  // the broker cannot tell (unreachable).
  runtime::Task<std::optional<bool>> HasEnded(std::string job_id);
  runtime::Task<absl::StatusOr<std::string>> Submit(cohort::v1::JobSpec job);
  Entry* Find(const std::string& id, uint64_t generation);
  // Wall time on the loop's clock.
  absl::Time Now() const { return loop_.clock().SystemNow(); }
  void UpdateGauges();

  ScheduleStore& store_;
  cohort::v1::Broker::Stub& broker_;
  SchedulerMetrics& metrics_;
  const ScheduleLimits limits_;
  runtime::EventLoop& loop_;
  // One thread: store writes reach RocksDB in the order they were made.
  runtime::ThreadPool store_thread_{1};
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  // job id -> schedule id, for slots buffered behind that job.
  absl::flat_hash_map<std::string, std::string> buffered_behind_;
  uint64_t next_generation_ = 1;
  // The fire loop of each schedule that has slots to fire (at most one per schedule),
  // cancelled and joined by Stop(). A map of handles, not a TaskGroup: it is also the
  // "already firing" check, and a TaskGroup would keep every fire loop of the process's
  // life until it is destroyed.
  absl::flat_hash_map<std::string, runtime::TaskHandle<void>> firing_;
  // OnResynced's checks (few: one per buffered slot per resync), joined by Stop().
  runtime::TaskGroup rechecks_;
  bool stopping_ = false;
};

}  // namespace cohort::scheduler
