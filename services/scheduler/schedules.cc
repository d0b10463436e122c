#include "services/scheduler/schedules.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/client_context.h"
#include "libs/common/backoff.h"
#include "libs/common/job_states.h"
#include "libs/common/log.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"
#include "libs/rpc/status.h"
#include "libs/rpc/unary_client.h"
#include "libs/runtime/errors.h"
#include "libs/runtime/sleep.h"
#include "services/scheduler/cron/catch_up.h"
#include "services/scheduler/schedule_spec.h"

namespace cohort::scheduler {
namespace {

using namespace std::chrono_literals;
using cohort::v1::Broker;
using cohort::v1::Schedule;
using cohort::v1::ScheduleSpec;
using common::ToProto;

const log::Logger kLog("scheduler");

constexpr auto kRpcTimeout = 10s;
// Retries of a slot while the broker cannot be reached.
constexpr common::Backoff::Options kRetryBackoff{.initial = absl::Milliseconds(100), .max = absl::Seconds(5)};
constexpr char kPageTokenPrefix[] = "after:";

bool Transient(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED ||
         code == grpc::StatusCode::RESOURCE_EXHAUSTED || code == grpc::StatusCode::ABORTED ||
         code == grpc::StatusCode::INTERNAL || code == grpc::StatusCode::UNKNOWN;
}

// A crash point for the test of "a slot never fires twice": with
// COHORT_FAILPOINT=scheduler.after_fire_submit the process kills itself (as kill -9
// would) right after the broker acknowledged a slot's job and before the slot is
// recorded.
bool FailpointAfterFireSubmit() {
  static const bool on = [] {
    const char* v = std::getenv("COHORT_FAILPOINT");
    return v != nullptr && std::string_view(v) == "scheduler.after_fire_submit";
  }();
  return on;
}

std::string SlotText(absl::Time slot) { return absl::FormatTime(absl::RFC3339_full, slot, absl::UTCTimeZone()); }

}  // namespace

struct Schedules::Entry {
  Schedule schedule;
  // Unset for a stored schedule that no longer passes validation: it is never armed
  // until an update gives it a valid spec.
  std::optional<Trigger> trigger;
  absl::Time fired_through;
  // Bumped by every client change; fires of an older generation are dropped.
  uint64_t generation = 0;
  runtime::TimerId timer = 0;
  absl::Time armed_slot = absl::InfiniteFuture();
  // Slots due, oldest first, fired one at a time by the fire loop.
  std::deque<absl::Time> due;
  // OVERLAP_POLICY_BUFFER_ONE: the slot waiting for last_job_id to end.
  std::optional<absl::Time> buffered;
};

Schedules::Schedules(runtime::EventLoop& loop, ScheduleStore& store, Broker::Stub& broker, SchedulerMetrics& metrics,
                     ScheduleLimits limits)
    : store_(store), broker_(broker), metrics_(metrics), limits_(limits), loop_(loop) {}

Schedules::~Schedules() {
  for (auto& [id, entry] : entries_) Disarm(*entry);
}

absl::Status Schedules::Load() {
  absl::StatusOr<std::vector<StoredSchedule>> loaded = store_.LoadAll();
  if (!loaded.ok()) return loaded.status();
  for (StoredSchedule& stored : *loaded) {
    absl::StatusOr<Trigger> trigger = TriggerOf(stored.schedule.spec());
    auto entry = std::make_unique<Entry>();
    entry->schedule = std::move(stored.schedule);
    entry->fired_through = stored.fired_through;
    if (trigger.ok()) {
      entry->trigger = *trigger;
    } else {
      // Stored before a rule existed (an interval of 30,000 years once wedged the loop):
      // keep it visible, so it can be updated or deleted, but never arm it.
      kLog.Warn("stored schedule is invalid and stays disarmed",
                {{"schedule_id", entry->schedule.id()}, {"error", std::string(trigger.status().message())}});
      entry->schedule.clear_next_fire_time();
    }
    entry->generation = next_generation_++;
    entries_[entry->schedule.id()] = std::move(entry);
  }
  UpdateGauges();
  return absl::OkStatus();
}

void Schedules::Start() {
  const absl::Time now = Now();
  for (auto& [id, entry] : entries_) {
    Entry& e = *entry;
    if (e.schedule.paused() || e.timer != 0 || !e.trigger.has_value()) continue;
    CatchUpPlan plan = PlanCatchUp(*e.trigger, e.fired_through, now, CatchUpPolicyOf(e.schedule.spec()),
                                   e.schedule.spec().catch_up_limit());
    if (!plan.fire.empty()) {
      kLog.Info("schedule catching up missed slots",
                {{"schedule_id", id},
                 {"slots", plan.fire.size()},
                 {"first_slot", SlotText(plan.fire.front())},
                 {"last_slot", SlotText(plan.fire.back())}});
    }
    for (absl::Time slot : plan.fire) Enqueue(e, slot);
    Arm(e, plan.next_slot);
  }
}

runtime::Task<void> Schedules::Stop() {
  stopping_ = true;
  for (auto& [id, entry] : entries_) Disarm(*entry);
  std::vector<runtime::TaskHandle<void>> running;
  for (auto& [id, handle] : firing_) running.push_back(handle);
  for (runtime::TaskHandle<void>& h : running) h.Cancel();
  for (runtime::TaskHandle<void>& h : running) {
    try {
      co_await h;
    } catch (const runtime::CancelledError&) {
      // Expected: it was cancelled above.
    }
  }
  co_await rechecks_.CancelAndJoin();
}

runtime::Task<absl::StatusOr<Schedule>> Schedules::Create(std::string id, ScheduleSpec spec) {
  if (absl::Status s = ValidateScheduleId(id); !s.ok()) co_return s;
  absl::StatusOr<Trigger> trigger = ValidateScheduleSpec(spec, limits_.min_interval);
  if (!trigger.ok()) co_return trigger.status();
  if (entries_.contains(id)) co_return absl::AlreadyExistsError(absl::StrCat("schedule ", common::QuoteBounded(id), " already exists"));
  if (entries_.size() >= limits_.max_schedules) {
    co_return absl::ResourceExhaustedError(absl::StrCat("at most ", limits_.max_schedules, " schedules"));
  }
  absl::Status template_ok = co_await CheckTemplate(id, spec);
  if (!template_ok.ok()) co_return template_ok;
  // Re-check after the await: another Create may have taken the id meanwhile.
  if (entries_.contains(id)) co_return absl::AlreadyExistsError(absl::StrCat("schedule ", common::QuoteBounded(id), " already exists"));
  const absl::Time now = Now();
  auto entry = std::make_unique<Entry>();
  entry->trigger = *trigger;
  entry->fired_through = now;
  entry->generation = next_generation_++;
  entry->schedule.set_id(id);
  *entry->schedule.mutable_spec() = std::move(spec);
  *entry->schedule.mutable_create_time() = ToProto(now);
  *entry->schedule.mutable_update_time() = ToProto(now);
  Entry& e = *entry;
  entries_[id] = std::move(entry);
  Arm(e, e.trigger->NextAfter(now));
  absl::Status persisted = co_await Persist(e);
  if (!persisted.ok()) {
    Disarm(e);
    entries_.erase(id);
    co_return persisted;
  }
  UpdateGauges();
  co_return e.schedule;
}

absl::StatusOr<Schedule> Schedules::Get(const std::string& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  return it->second->schedule;
}

absl::StatusOr<cohort::v1::ListSchedulesResponse> Schedules::List(int page_size, const std::string& page_token) const {
  if (page_size < 0) return absl::InvalidArgumentError("page_size must not be negative");
  if (page_size == 0) page_size = limits_.default_page_size;
  page_size = std::min(page_size, limits_.max_page_size);
  std::string after;
  if (!page_token.empty()) {
    if (!absl::StartsWith(page_token, kPageTokenPrefix)) {
      return absl::InvalidArgumentError("page_token was not issued by this scheduler");
    }
    after = page_token.substr(sizeof(kPageTokenPrefix) - 1);
  }
  cohort::v1::ListSchedulesResponse response;
  auto it = page_token.empty() ? entries_.begin() : entries_.upper_bound(after);
  for (; it != entries_.end() && response.schedules_size() < page_size; ++it) {
    *response.add_schedules() = it->second->schedule;
  }
  if (it != entries_.end()) response.set_next_page_token(absl::StrCat(kPageTokenPrefix, response.schedules().rbegin()->id()));
  return response;
}

runtime::Task<absl::StatusOr<Schedule>> Schedules::Update(std::string id, ScheduleSpec spec) {
  if (!entries_.contains(id)) co_return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  absl::StatusOr<Trigger> trigger = ValidateScheduleSpec(spec, limits_.min_interval);
  if (!trigger.ok()) co_return trigger.status();
  absl::Status template_ok = co_await CheckTemplate(id, spec);
  if (!template_ok.ok()) co_return template_ok;
  auto it = entries_.find(id);
  if (it == entries_.end()) co_return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  Entry& e = *it->second;
  const absl::Time now = Now();
  Disarm(e);
  e.generation = next_generation_++;
  e.due.clear();
  e.buffered.reset();
  e.trigger = *trigger;
  e.fired_through = std::max(e.fired_through, now);
  *e.schedule.mutable_spec() = std::move(spec);
  *e.schedule.mutable_update_time() = ToProto(now);
  if (!e.schedule.paused()) Arm(e, e.trigger->NextAfter(e.fired_through));
  UpdateGauges();
  absl::Status persisted = co_await Persist(e);
  if (!persisted.ok()) co_return persisted;
  co_return e.schedule;
}

runtime::Task<absl::Status> Schedules::Delete(std::string id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) co_return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  Disarm(*it->second);
  entries_.erase(it);
  UpdateGauges();
  ScheduleStore* store = &store_;
  absl::Status deleted = co_await runtime::ToThread(store_thread_, [store, &id] { return store->Delete(id); });
  co_return deleted;
}

runtime::Task<absl::StatusOr<Schedule>> Schedules::SetPaused(std::string id, bool paused) {
  auto it = entries_.find(id);
  if (it == entries_.end()) co_return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  Entry& e = *it->second;
  if (e.schedule.paused() == paused) co_return e.schedule;
  const absl::Time now = Now();
  Disarm(e);
  e.generation = next_generation_++;
  e.due.clear();
  e.buffered.reset();
  e.schedule.set_paused(paused);
  *e.schedule.mutable_update_time() = ToProto(now);
  // Slots that pass while paused are never caught up: the watermark moves to now.
  e.fired_through = std::max(e.fired_through, now);
  if (paused || !e.trigger.has_value()) {
    e.schedule.clear_next_fire_time();
  } else {
    Arm(e, e.trigger->NextAfter(e.fired_through));
  }
  absl::Status persisted = co_await Persist(e);
  if (!persisted.ok()) co_return persisted;
  co_return e.schedule;
}

runtime::Task<absl::StatusOr<std::string>> Schedules::TriggerNow(std::string id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) co_return absl::NotFoundError(absl::StrCat("schedule ", common::QuoteBounded(id), " not found"));
  absl::StatusOr<std::string> job_id = co_await Submit(JobForSlot(id, it->second->schedule.spec(), std::nullopt));
  if (!job_id.ok()) co_return job_id.status();
  it = entries_.find(id);
  if (it != entries_.end()) {
    it->second->schedule.set_last_job_id(*job_id);
    absl::Status persisted = co_await Persist(*it->second);
    if (!persisted.ok()) co_return persisted;
  }
  metrics_.Fired("triggered");
  co_return job_id;
}

void Schedules::OnJobEnded(const std::string& job_id) {
  auto node = buffered_behind_.extract(job_id);
  if (node.empty()) return;
  auto it = entries_.find(node.mapped());
  if (it == entries_.end() || !it->second->buffered.has_value()) return;
  Entry& e = *it->second;
  if (e.schedule.last_job_id() != job_id) return;
  const absl::Time slot = *e.buffered;
  e.buffered.reset();
  Enqueue(e, slot);
}

void Schedules::OnResynced() {
  if (stopping_) return;
  // Events may have been missed while not following: look again at each buffered job.
  std::vector<std::string> jobs;
  for (const auto& [job, schedule] : buffered_behind_) jobs.push_back(job);
  for (std::string& job : jobs) rechecks_.Spawn(RecheckBuffered(std::move(job)));
}

runtime::Task<void> Schedules::RecheckBuffered(std::string job_id) {
  std::optional<bool> ended = co_await HasEnded(job_id);
  if (ended.value_or(false)) OnJobEnded(job_id);
}

runtime::Task<absl::Status> Schedules::CheckTemplate(const std::string& id, const ScheduleSpec& spec) {
  cohort::v1::SubmitRequest request;
  request.set_validate_only(true);
  *request.add_jobs() = JobForSlot(id, spec, Now());
  cohort::v1::SubmitResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::Submit, &ctx, request, &response);
  if (status.ok()) co_return absl::OkStatus();
  if (Transient(status.error_code())) {
    co_return absl::UnavailableError(
        absl::StrCat("cannot reach the broker to validate the job template: ", status.error_message()));
  }
  co_return absl::InvalidArgumentError(absl::StrCat("job template: ", status.error_message()));
}

runtime::Task<absl::Status> Schedules::Persist(const Entry& entry) {
  // Captures by reference only: the frame outlives the await (GCC 12 mis-destroys
  // non-trivial captures of a temporary lambda in a co_await expression).
  const StoredSchedule stored{entry.schedule, entry.fired_through};
  ScheduleStore* store = &store_;
  absl::Status written = co_await runtime::ToThread(store_thread_, [store, &stored] { return store->Put(stored); });
  co_return written;
}

void Schedules::Arm(Entry& entry, absl::Time next_slot) {
  Disarm(entry);
  entry.armed_slot = next_slot;
  if (next_slot == absl::InfiniteFuture()) {
    entry.schedule.clear_next_fire_time();
    return;
  }
  *entry.schedule.mutable_next_fire_time() = ToProto(next_slot);
  const absl::Duration wait = std::max(absl::ZeroDuration(), next_slot - Now());
  // Saturating: a slot decades away is a timer that does not fire before then, never
  // one whose deadline wrapped into the past (which re-armed itself forever).
  const runtime::TimePoint deadline = common::AddSaturated(loop_.Now(), wait);
  entry.timer = loop_.CallAt(deadline, [this, id = entry.schedule.id(), generation = entry.generation] {
    OnTimer(id, generation);
  });
}

void Schedules::Disarm(Entry& entry) {
  if (entry.timer != 0) loop_.CancelTimer(entry.timer);
  entry.timer = 0;
}

void Schedules::OnTimer(const std::string& id, uint64_t generation) {
  Entry* e = Find(id, generation);
  if (e == nullptr || !e->trigger.has_value()) return;
  e->timer = 0;
  const absl::Time slot = e->armed_slot;
  if (Now() < slot) {
    Arm(*e, slot);  // the loop's clock ran ahead of the wall clock: never fire early
    return;
  }
  Arm(*e, e->trigger->NextAfter(slot));
  Enqueue(*e, slot);
}

void Schedules::Enqueue(Entry& entry, absl::Time slot) {
  entry.due.push_back(slot);
  const std::string& id = entry.schedule.id();
  if (firing_.contains(id) || stopping_) return;
  firing_[id] = runtime::Spawn(loop_, FireLoop(id, entry.generation));
}

runtime::Task<void> Schedules::FireLoop(std::string id, uint64_t generation) {
  while (true) {
    Entry* e = Find(id, generation);
    if (e == nullptr || e->due.empty()) break;
    const absl::Time slot = e->due.front();
    co_await FireSlot(id, generation, slot);
    e = Find(id, generation);
    if (e != nullptr && !e->due.empty() && e->due.front() == slot) e->due.pop_front();
  }
  // A change of generation while firing left the new generation's slots to a new loop.
  firing_.erase(id);
  auto it = entries_.find(id);
  if (!stopping_ && it != entries_.end() && !it->second->due.empty()) {
    firing_[id] = runtime::Spawn(loop_, FireLoop(id, it->second->generation));
  }
}

runtime::Task<void> Schedules::FireSlot(std::string id, uint64_t generation, absl::Time slot) {
  Entry* e = Find(id, generation);
  if (e == nullptr) co_return;
  const cohort::v1::OverlapPolicy overlap = e->schedule.spec().overlap_policy();
  const std::string last_job = e->schedule.last_job_id();
  if (overlap != cohort::v1::OVERLAP_POLICY_ALLOW && !last_job.empty()) {
    std::optional<bool> ended;
    common::Backoff backoff(kRetryBackoff);
    while (!ended.has_value()) {
      ended = co_await HasEnded(last_job);
      if (!ended.has_value()) co_await runtime::Sleep(backoff.NextChrono());
    }
    e = Find(id, generation);
    if (e == nullptr) co_return;
    if (!*ended) {
      if (overlap == cohort::v1::OVERLAP_POLICY_BUFFER_ONE && !e->buffered.has_value()) {
        e->buffered = slot;
        buffered_behind_[last_job] = id;
        co_return;
      }
      metrics_.Fired("skipped");
      kLog.Info("schedule slot skipped: its previous job has not ended",
                {{"schedule_id", id}, {"slot", SlotText(slot)}, {"job_id", last_job},
                 {"overlap_policy", overlap == cohort::v1::OVERLAP_POLICY_BUFFER_ONE ? "buffer_one" : "skip"}});
      e->fired_through = std::max(e->fired_through, slot);
      co_await PersistOrLog(*e);
      co_return;
    }
  }

  const cohort::v1::JobSpec job = JobForSlot(id, e->schedule.spec(), slot);
  absl::StatusOr<std::string> job_id;
  common::Backoff backoff(kRetryBackoff);
  while (true) {
    job_id = co_await Submit(job);
    if (job_id.ok() || !absl::IsUnavailable(job_id.status()) || Find(id, generation) == nullptr) break;
    const absl::Duration retry_in = backoff.Next();
    kLog.Warn("broker unreachable, retrying the schedule's slot",
              {{"schedule_id", id},
               {"slot", SlotText(slot)},
               {"attempt", backoff.attempts()},
               {"retry_in", retry_in},
               {"error", std::string(job_id.status().message())}});
    co_await runtime::Sleep(absl::ToChronoNanoseconds(retry_in));
  }
  // A job the broker accepted is counted even when an update or delete replaced this
  // generation during the Submit: the job exists (and the new generation never fires
  // this slot again).
  if (job_id.ok()) {
    if (FailpointAfterFireSubmit()) ::raise(SIGKILL);
    metrics_.Fired("submitted");
    kLog.Info("schedule fired", {{"schedule_id", id}, {"slot", SlotText(slot)}, {"job_id", *job_id}});
    metrics_.FireLag(std::max(0.0, absl::ToDoubleSeconds(Now() - slot)));
  }
  e = Find(id, generation);
  if (e == nullptr) co_return;
  if (!job_id.ok()) {
    kLog.Warn("schedule slot not submitted", {{"schedule_id", id},
                                              {"slot", SlotText(slot)},
                                              {"error", std::string(job_id.status().message())}});
    metrics_.Fired("failed");
    e->fired_through = std::max(e->fired_through, slot);
    co_await PersistOrLog(*e);
    co_return;
  }
  *e->schedule.mutable_last_fire_time() = ToProto(slot);
  e->schedule.set_last_job_id(*job_id);
  e->fired_through = std::max(e->fired_through, slot);
  co_await PersistOrLog(*e);
}

runtime::Task<void> Schedules::PersistOrLog(const Entry& entry) {
  const std::string id = entry.schedule.id();
  absl::Status persisted = co_await Persist(entry);
  if (!persisted.ok()) {
    // The slot stays unrecorded: a restart re-fires it with the same idempotency key.
    kLog.Error("recording a fire failed", {{"schedule_id", id}, {"error", std::string(persisted.message())}});
  }
}

runtime::Task<std::optional<bool>> Schedules::HasEnded(std::string job_id) {
  cohort::v1::GetJobRequest request;
  request.set_job_id(job_id);
  cohort::v1::GetJobResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::GetJob, &ctx, request, &response);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) co_return true;
  if (!status.ok()) co_return std::nullopt;
  co_return common::IsTerminal(response.job().state());
}

runtime::Task<absl::StatusOr<std::string>> Schedules::Submit(cohort::v1::JobSpec job) {
  cohort::v1::SubmitRequest request;
  *request.add_jobs() = std::move(job);
  cohort::v1::SubmitResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + kRpcTimeout);
  grpc::Status status = co_await rpc::Call(broker_.async(), &Broker::Stub::async::Submit, &ctx, request, &response);
  if (Transient(status.error_code())) {
    co_return absl::UnavailableError(absl::StrCat("broker: ", status.error_message()));
  }
  if (!status.ok()) co_return rpc::FromGrpc(status);
  if (response.job_ids_size() != 1) co_return absl::InternalError("broker returned no job id");
  co_return response.job_ids(0);
}

Schedules::Entry* Schedules::Find(const std::string& id, uint64_t generation) {
  if (stopping_) return nullptr;
  auto it = entries_.find(id);
  if (it == entries_.end() || it->second->generation != generation) return nullptr;
  return it->second.get();
}

void Schedules::UpdateGauges() {
  metrics_.schedules().Set(static_cast<double>(entries_.size()));
  const auto invalid = std::count_if(entries_.begin(), entries_.end(),
                                     [](const auto& kv) { return !kv.second->trigger.has_value(); });
  metrics_.schedules_invalid().Set(static_cast<double>(invalid));
}

}  // namespace cohort::scheduler
