// BrokerEngine: the calls of clients and of the scheduler (submit, read, cancel,
// release, queue administration). Each validates, changes jobs through Transition and
// answers once the change is durable. See broker_engine.h.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/common/job_states.h"
#include "libs/common/log.h"
#include "libs/common/names.h"
#include "libs/common/proto_time.h"
#include "libs/common/quote.h"
#include "services/broker/batch_budget.h"
#include "services/broker/broker_engine.h"
#include "services/broker/ended_jobs.h"
#include "services/broker/job_filter.h"
#include "services/broker/job_index.h"
#include "services/broker/job_policy.h"

namespace cohort::broker {

using common::FromProto;
using common::ToProto;
using cohort::v1::Job;

namespace {

const log::Logger kLog("broker");

// A ListJobs page token: the position (the last job id of the page) and a
// fingerprint of the listing it belongs to (filters and order), web-safe base64 of
// "<fingerprint hex>:<last id>". The fingerprint is FNV-1a over the request's
// serialized filter fields, stable across restarts of the same build.
constexpr std::size_t kMaxTokenIdBytes = 64;

// At most what a queue's settings record stages: "queue:" and a 64-byte name as its
// key, a QueueInfo with its name and limits as its value.
constexpr std::size_t kQueueRecordBytes = 512;

// QueueInfo.unserved_kinds lists at most this many names (broker.proto).
constexpr int kMaxUnservedKindsListed = 32;

std::string ListingFingerprint(const cohort::v1::ListJobsRequest& request) {
  cohort::v1::ListJobsRequest listing = request;
  listing.clear_page_size();
  listing.clear_page_token();
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream out(&bytes);
    google::protobuf::io::CodedOutputStream coded(&out);
    coded.SetSerializationDeterministic(true);
    listing.SerializeToCodedStream(&coded);
  }
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrCat(absl::Hex(h, absl::kZeroPad16));
}

std::string PageToken(const std::string& fingerprint, const std::string& last_id) {
  return absl::WebSafeBase64Escape(absl::StrCat(fingerprint, ":", last_id));
}

// The last job id of the previous page; INVALID_ARGUMENT for a token this broker did
// not issue or one issued for another listing.
absl::StatusOr<std::string> PageTokenAfter(const std::string& token, const std::string& fingerprint) {
  std::string bytes;
  if (token.size() > 4 * kMaxTokenIdBytes || !absl::WebSafeBase64Unescape(token, &bytes) ||
      bytes.size() <= fingerprint.size() + 1 || bytes[fingerprint.size()] != ':') {
    return absl::InvalidArgumentError("page_token was not issued by this broker: use a next_page_token as returned");
  }
  if (absl::string_view(bytes).substr(0, fingerprint.size()) != fingerprint) {
    return absl::InvalidArgumentError(
        "page_token was issued for other filters or another order: repeat the queue, states, filter and "
        "newest_first of its first page");
  }
  std::string last = bytes.substr(fingerprint.size() + 1);
  if (last.size() > kMaxTokenIdBytes) {
    return absl::InvalidArgumentError("page_token was not issued by this broker: use a next_page_token as returned");
  }
  return last;
}

// Walks the ids of several ordered sets as one, in id order (descending when
// `newest_first`), strictly after `after` (empty: from the start), each id once even
// when several sets hold it. A set may be bounded to the ids [first, last) of a range
// (an empty bound is none). A walk may be cut short at an id (StopAt): it ends there,
// and truncated() says that ids beyond it may remain.
class IdWalk {
 public:
  using Range = std::pair<std::string, std::string>;

  IdWalk(bool newest_first, std::string after) : newest_first_(newest_first), after_(std::move(after)) {}

  // Walks `set` too; the walk keeps it.
  void Own(JobIndex::IdSet set) {
    owned_.push_back(std::make_unique<JobIndex::IdSet>(std::move(set)));
    Add(owned_.back().get());
  }
  // Ends the walk at `stop` (included): later ids are left for another walk, which
  // truncated() says.
  void StopAt(std::string stop) {
    stop_ = std::move(stop);
    truncated_ = true;
  }
  bool truncated() const { return truncated_; }
  // The last id Next returned ("" before the first).
  const std::string& last() const { return last_; }

  void Add(const JobIndex::IdSet* set, const Range& range = {}) {
    if (set == nullptr || set->empty()) return;
    Cursor c{set, {}, range};
    if (newest_first_) {
      // One past the next id: below `after` and below the range's end.
      std::string end = range.second;
      if (!after_.empty() && (end.empty() || after_ < end)) end = after_;
      c.it = end.empty() ? set->end() : set->lower_bound(end);
    } else if (!after_.empty() && (range.first.empty() || after_ >= range.first)) {
      c.it = set->upper_bound(after_);
    } else {
      c.it = range.first.empty() ? set->begin() : set->lower_bound(range.first);
    }
    cursors_.push_back(c);
  }

  // The next id, or null at the end; it points into the walk, valid until the next call.
  const std::string* Next() {
    const CompactId* best = nullptr;
    for (Cursor& c : cursors_) {
      const CompactId* id = Peek(c);
      if (id != nullptr && (best == nullptr || (newest_first_ ? *id > *best : *id < *best))) best = id;
    }
    if (best == nullptr) return nullptr;
    if (stop_ && (newest_first_ ? *best < *stop_ : *best > *stop_)) return nullptr;
    last_.assign(best->view());  // in place: no allocation per id
    for (Cursor& c : cursors_) {  // every set at that id moves past it
      const CompactId* id = Peek(c);
      if (id == nullptr || *id != last_) continue;
      if (newest_first_) {
        --c.it;
      } else {
        ++c.it;
      }
    }
    return &last_;
  }

 private:
  struct Cursor {
    const JobIndex::IdSet* set;
    JobIndex::IdSet::const_iterator it;  // newest first: one past the next id
    Range range;
  };
  const CompactId* Peek(const Cursor& c) const {
    if (newest_first_) {
      if (c.it == c.set->begin()) return nullptr;
      const CompactId* id = &*std::prev(c.it);
      return c.range.first.empty() || *id >= c.range.first ? id : nullptr;
    }
    if (c.it == c.set->end()) return nullptr;
    return c.range.second.empty() || *c.it < c.range.second ? &*c.it : nullptr;
  }

  bool newest_first_;
  std::string after_;
  std::vector<Cursor> cursors_;
  std::vector<std::unique_ptr<JobIndex::IdSet>> owned_;  // stable addresses for cursors_
  std::optional<std::string> stop_;
  bool truncated_ = false;
  std::string last_;
};

// The ids of summaries that ended in the filter's finished range, strictly after
// `after` in walk order, when that is cheaper than the other candidates (`others`
// ids): nullopt otherwise. Scanning the range costs its size K on every call, and
// only the `limit` nearest ids are kept (the page, bounded), so it is used while
// K <= sqrt(limit * others) (a walk of the others finds `limit` matches in about
// limit * others / K ids when matches are spread evenly) and K <= others / 2.
// `truncated` says ids beyond the farthest kept were left out.
std::optional<JobIndex::IdSet> FinishedCandidates(const EndedJobs& ended, const JobMatcher& matcher,
                                                  bool newest_first, const std::string& after, std::size_t limit,
                                                  std::size_t others, bool& truncated) {
  const std::optional<absl::Time>& from = matcher.finished_after();
  const std::optional<absl::Time>& to = matcher.finished_before();
  if (!from && !to) return std::nullopt;
  limit = std::max<std::size_t>(limit, 1);
  const std::size_t cap = std::min<std::size_t>(
      others / 2, static_cast<std::size_t>(std::sqrt(static_cast<double>(limit) * static_cast<double>(others))));
  auto [first, last] = ended.EndedBetween(from ? &*from : nullptr, to ? &*to : nullptr);
  std::size_t k = 0;
  for (auto it = first; it != last; ++it) {
    if (++k > cap) return std::nullopt;
  }
  // The `limit` ids nearest `after` in walk order; the heap's top is the farthest kept.
  auto nearer = [newest_first](const CompactId* a, const CompactId* b) { return newest_first ? *a > *b : *a < *b; };
  std::priority_queue<const CompactId*, std::vector<const CompactId*>, decltype(nearer)> kept(nearer);
  truncated = false;
  for (auto it = first; it != last; ++it) {
    const CompactId& id = it->second;
    if (!after.empty() && (newest_first ? id >= after : id <= after)) continue;
    if (kept.size() < limit) {
      kept.push(&id);
    } else if (nearer(&id, kept.top())) {
      kept.pop();
      kept.push(&id);
      truncated = true;
    } else {
      truncated = true;
    }
  }
  JobIndex::IdSet ids;
  for (; !kept.empty(); kept.pop()) ids.insert(*kept.top());
  return ids;
}

// The ids that may match `matcher`, strictly after `after`, in id order (newest first
// or oldest first). Candidates: the smallest index that the filter pins (states, queue,
// kind, error code, a label's k=v or k in (...) with the jobs whose labels are not
// indexed), else every job (all states); or, when cheaper (FinishedCandidates, keeping
// `limit` ids), the summaries in the finished range and the ended jobs maybe still
// live (then the walk may be truncated: go on after its last id); within the ids a
// creation-time range allows, plus the jobs whose ids do not tell their creation time.
// `live(id)`: the job's record is live (not a summary), to prune EndedMaybeLive. The
// walk holds iterators into `index`: use it before the index changes.
IdWalk CandidateWalk(const JobIndex& index, const EndedJobs& ended, const JobMatcher& matcher, bool newest_first,
                     const std::string& after, std::size_t limit, absl::FunctionRef<bool(const std::string&)> live) {
  std::vector<const JobIndex::IdSet*> candidates;
  std::size_t smallest = 0;
  bool indexed = false;
  auto consider = [&](std::vector<const JobIndex::IdSet*> sets) {
    std::size_t n = 0;
    for (const JobIndex::IdSet* set : sets) n += set == nullptr ? 0 : set->size();
    if (!indexed || n < smallest) {
      candidates = std::move(sets);
      smallest = n;
      indexed = true;
    }
  };
  if (!matcher.states().empty()) {
    std::vector<const JobIndex::IdSet*> sets;
    for (cohort::v1::JobState state : matcher.states()) sets.push_back(index.ByState(state));
    consider(std::move(sets));
  }
  if (!matcher.queue().empty()) consider({index.ByQueue(matcher.queue())});
  if (!matcher.kind().empty()) consider({index.ByKind(matcher.kind())});
  if (!matcher.error_code().empty()) consider({index.ByErrorCode(matcher.error_code())});
  for (const LabelRequirement& r : matcher.labels().requirements()) {
    if (r.op != LabelRequirement::Op::kEquals && r.op != LabelRequirement::Op::kIn) continue;
    std::vector<const JobIndex::IdSet*> sets = {&index.LabelsUnindexed()};
    for (const std::string& value : r.values) sets.push_back(index.ByLabel(r.key, value));
    consider(std::move(sets));
  }
  if (!indexed) {
    for (int state = cohort::v1::JobState_MIN; state <= cohort::v1::JobState_MAX; ++state) {
      const JobIndex::IdSet* set = index.ByState(static_cast<cohort::v1::JobState>(state));
      candidates.push_back(set);
      smallest += set == nullptr ? 0 : set->size();
    }
  }
  if (matcher.finished_after() || matcher.finished_before()) {
    index.PruneEnded(index.EndedMaybeLive().size(), live);  // summarized meanwhile: in `ended`
  }
  IdWalk walk(newest_first, after);
  bool truncated = false;
  if (std::optional<JobIndex::IdSet> finished =
          FinishedCandidates(ended, matcher, newest_first, after, limit, smallest, truncated)) {
    if (truncated) walk.StopAt((newest_first ? *finished->begin() : *finished->rbegin()).str());
    candidates = {&index.EndedMaybeLive()};
    walk.Own(*std::move(finished));
  }
  const std::optional<absl::Time>& created_after = matcher.created_after();
  const std::optional<absl::Time>& created_before = matcher.created_before();
  IdWalk::Range range;
  if (created_after || created_before) {
    range = index.CreatedIdRange(created_after ? &*created_after : nullptr,
                                 created_before ? &*created_before : nullptr);
    walk.Add(&index.IdsOffTheirCreateTime());
  }
  for (const JobIndex::IdSet* set : candidates) walk.Add(set, range);
  return walk;
}

}  // namespace

runtime::Task<absl::StatusOr<std::vector<std::string>>> BrokerEngine::Submit(std::vector<cohort::v1::JobSpec> specs,
                                                                             bool validate_only, std::string principal) {
  SpecList list;
  list.Reserve(static_cast<int>(std::min<std::size_t>(specs.size(), std::numeric_limits<int>::max())));
  for (cohort::v1::JobSpec& spec : specs) *list.Add() = std::move(spec);
  return Submit(std::move(list), validate_only, std::move(principal));
}

runtime::Task<absl::StatusOr<std::vector<std::string>>> BrokerEngine::Submit(SpecList specs, bool validate_only,
                                                                             std::string principal) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (specs.empty()) co_return absl::InvalidArgumentError("jobs is empty: submit at least one job");
  if (static_cast<std::size_t>(specs.size()) > options_.max_submit_batch) {
    co_return absl::InvalidArgumentError(absl::StrCat("jobs has ", specs.size(), " entries: the limit per Submit is ",
                                                      options_.max_submit_batch));
  }
  // Ended jobs summarized since are dropped from EndedMaybeLive a few per job submitted,
  // so it stays about the ended jobs not yet summarized.
  index_.PruneEnded(2 * static_cast<std::size_t>(specs.size()),
                    [this](const std::string& id) { return jobs_.contains(id); });
  std::vector<std::string> missing;
  absl::flat_hash_map<std::string, int> keys;  // idempotency key -> first index using it
  for (int i = 0; i < static_cast<int>(specs.size()); ++i) {
    const cohort::v1::JobSpec& spec = specs[i];
    if (absl::Status s = ValidateSpec(spec, i, options_.spec_limits); !s.ok()) co_return s;
    if (!spec.idempotency_key().empty()) {
      if (auto [it, fresh] = keys.emplace(spec.idempotency_key(), i); !fresh) {
        co_return absl::InvalidArgumentError(absl::StrCat("jobs[", i, "].idempotency_key repeats jobs[", it->second,
                                                          "]'s: a key may appear once per request"));
      }
    }
    absl::flat_hash_set<int> indexes;
    for (int parent : spec.depends_on_index()) {
      if (parent < 0 || parent >= i) {
        co_return absl::InvalidArgumentError(absl::StrCat("jobs[", i, "].depends_on_index ", parent,
                                                          " must name an earlier job of this request (0..", i - 1, ")"));
      }
      if (!indexes.insert(parent).second) {
        co_return absl::InvalidArgumentError(
            absl::StrCat("jobs[", i, "].depends_on_index names ", parent, " twice: list each parent once"));
      }
    }
    absl::flat_hash_set<std::string> parents;
    for (const std::string& parent : spec.depends_on()) {
      if (!parents.insert(parent).second) {
        co_return absl::InvalidArgumentError(absl::StrCat("jobs[", i, "].depends_on names ",
                                                          common::QuoteBounded(parent), " twice: list each parent once"));
      }
      if (!HasJob(parent)) missing.push_back(parent);
    }
  }
  if (!missing.empty()) co_return absl::NotFoundError(absl::StrCat("unknown parent jobs: ", common::QuoteListBounded(missing)));
  // All or nothing means one commit, and a commit the store refuses stops the broker.
  const store::BatchLimits limits = store_.limits();
  absl::flat_hash_set<std::string> fresh_queues;  // created by this Submit, in its commit
  for (const cohort::v1::JobSpec& spec : specs) {
    if (dispatcher_.Find(spec.queue()) == nullptr) fresh_queues.insert(spec.queue());
  }
  std::size_t bytes = fresh_queues.size() * kQueueRecordBytes;
  std::size_t records = fresh_queues.size();
  for (const cohort::v1::JobSpec& spec : specs) {
    bytes += SubmitBytes(spec);
    records += SubmitTransitions(spec) * kTransitionRecords;
  }
  if (bytes > limits.max_bytes || records > limits.max_records) {
    co_return absl::InvalidArgumentError(absl::StrCat(
        "the ", specs.size(), " jobs of this Submit need up to ", bytes, " bytes in ", records,
        " records of one commit, over the broker's limit of ", limits.max_bytes, " bytes and ", limits.max_records,
        " records per Submit (about twice the specs' size, four times for specs with a deadline): submit them "
        "in several calls"));
  }
  if (validate_only) co_return std::vector<std::string>{};
  if (absl::Status s = CheckQueueRoom(fresh_queues); !s.ok()) co_return s;
  absl::flat_hash_set<std::string> fresh_kinds;  // no job of them is held
  for (const cohort::v1::JobSpec& spec : specs) {
    if (index_.ByKind(spec.kind()) == nullptr) fresh_kinds.insert(spec.kind());
  }
  if (absl::Status s = CheckKindRoom(fresh_kinds); !s.ok()) co_return s;
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;

  Pending p;
  p.batch.Reserve(records);
  std::vector<std::string> ids;
  ids.reserve(specs.size());
  const absl::Time now = Now();
  // The specs become the jobs' own: taken out of the list rather than moved into new
  // JobSpecs (a JobSpec is costly to construct, labels map and all).
  std::vector<cohort::v1::JobSpec*> taken(specs.size());
  specs.ExtractSubrange(0, specs.size(), taken.data());
  std::vector<std::unique_ptr<cohort::v1::JobSpec>> owned(taken.begin(), taken.end());
  // Jobs per queue, counted into the metric once per queue rather than once per job
  // (a labelled counter's lookup builds its label set and takes a lock), in the order
  // the queues first appear: the first --metric-label-limit queue names seen get their
  // own label, so the counting must not reorder them.
  std::vector<std::pair<std::string, int>> submitted_to;
  absl::flat_hash_map<std::string, std::size_t> submitted_slot;  // queue -> its index there
  for (std::unique_ptr<cohort::v1::JobSpec>& owned_spec : owned) {
    cohort::v1::JobSpec& spec = *owned_spec;
    if (!spec.idempotency_key().empty()) {
      if (auto it = idempotency_.find(spec.idempotency_key()); it != idempotency_.end()) {
        ids.push_back(it->second);
        continue;
      }
    }
    if (dispatcher_.Find(spec.queue()) == nullptr) {  // the first Submit to it creates it
      dispatcher_.Queue(spec.queue());
      StageQueueSettings(spec.queue(), p);
      kLog.Info("queue created by a submit", {{"queue", spec.queue()}});
    }
    std::string id = new_job_id_();
    for (int parent : spec.depends_on_index()) spec.add_depends_on(ids[parent]);
    spec.clear_depends_on_index();
    // Ids increase, so the new record usually goes last: hinted, std::map checks its
    // neighbour instead of descending with string compares.
    JobRecord& rec = jobs_.emplace_hint(jobs_.end(), std::piecewise_construct, std::forward_as_tuple(id),
                                        std::forward_as_tuple())
                         ->second;
    Job& job = rec.job;
    job.set_id(id);
    job.set_submitted_by(principal);
    *job.mutable_create_time() = ToProto(now);
    if (spec.has_run_at() && FromProto(spec.run_at()) > now) *job.mutable_not_before() = spec.run_at();
    if (spec.has_delay() && FromProto(spec.delay()) > absl::ZeroDuration()) {
      *job.mutable_not_before() = ToProto(now + Bounded(FromProto(spec.delay())));
    }
    bool waits = job.has_not_before() || spec.depends_on_size() > 0;
    if (!spec.idempotency_key().empty()) idempotency_[spec.idempotency_key()] = id;
    if (auto [slot, added] = submitted_slot.try_emplace(spec.queue(), submitted_to.size()); added) {
      submitted_to.emplace_back(spec.queue(), 1);
    } else {
      ++submitted_to[slot->second].second;
    }
    job.set_allocated_spec(owned_spec.release());
    Transition(rec, waits ? cohort::v1::JOB_STATE_PENDING : cohort::v1::JOB_STATE_QUEUED,
               cohort::v1::TRANSITION_REASON_SUBMITTED, p);
    ArmDeadline(rec, p);  // a deadline already past fails it in this same commit
    ids.push_back(std::move(id));
  }
  for (const auto& [queue, n] : submitted_to) metrics_.Submitted(queue, n);
  if (p.batch.empty()) co_return ids;  // every spec was a known idempotency key
  DispatchInto(p);  // the assignments share the commit, and are sent after it
  co_await Persist(std::move(p));
  co_return ids;
}

runtime::Task<absl::StatusOr<Job>> BrokerEngine::ReadJob(std::string id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  co_return co_await CurrentJob(std::move(id));
}

absl::StatusOr<Job> BrokerEngine::GetJob(const std::string& id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (auto it = jobs_.find(id); it != jobs_.end()) return it->second.job;
  if (!ended_.contains(id)) return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
  if (const Job* cached = ended_.Cached(id)) return *cached;
  return absl::UnavailableError(absl::StrCat("job ", id, " has ended and its record is on disk: ReadJob reads it"));
}

runtime::Task<absl::StatusOr<cohort::v1::ListJobsResponse>> BrokerEngine::ListJobs(
    cohort::v1::ListJobsRequest request) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (request.page_size() < 0) co_return absl::InvalidArgumentError("page_size must not be negative");
  if (!request.queue().empty()) {
    if (absl::Status s = common::CheckName(request.queue(), "queue "); !s.ok()) co_return s;
  }
  std::vector<cohort::v1::JobState> states;
  for (int s : request.states()) {
    if (!cohort::v1::JobState_IsValid(s) || s == cohort::v1::JOB_STATE_UNSPECIFIED) {
      co_return absl::InvalidArgumentError(absl::StrCat("states contains ", s, ", which is not a job state"));
    }
    states.push_back(static_cast<cohort::v1::JobState>(s));
  }
  absl::StatusOr<JobMatcher> matcher = JobMatcher::Compile(request.filter(), "filter");
  if (!matcher.ok()) co_return matcher.status();
  matcher->RestrictQueue(request.queue());
  matcher->RestrictStates(states);
  const std::size_t page =
      request.page_size() == 0 ? 100 : std::min<std::size_t>(request.page_size(), options_.max_list_page);
  const std::string fingerprint = ListingFingerprint(request);
  std::string after;  // the last job id examined
  if (!request.page_token().empty()) {
    absl::StatusOr<std::string> last = PageTokenAfter(request.page_token(), fingerprint);
    if (!last.ok()) co_return last.status();
    after = *std::move(last);
  }
  cohort::v1::ListJobsResponse response;
  response.set_sequence(events_.committed());
  if (matcher->matches_nothing()) co_return response;

  // Rounds of: walk the candidates (synchronously, from `after`) and keep those that
  // match, up to the one past the page; then read from the store the finished ones
  // whose summary could not decide, and those kept. A job read is checked against the
  // filter as it is then, and the walk resumes after the last candidate.
  struct Candidate {
    std::string id;
    std::optional<Job> job;  // set: the job as it is (live, or cached)
  };
  std::vector<Job> matched;
  bool exhausted = false;
  while (!exhausted && matched.size() <= page) {
    IdWalk walk = CandidateWalk(index_, ended_, *matcher, request.newest_first(), after, 2 * (page + 1),
                                [this](const std::string& id) { return jobs_.contains(id); });
    std::vector<Candidate> round;
    std::size_t certain = 0;  // candidates known to match
    const std::size_t wanted = page + 1 - matched.size();
    exhausted = true;
    while (const std::string* id = walk.Next()) {
      ++listing_visited_;
      if (auto it = jobs_.find(*id); it != jobs_.end()) {
        if (!matcher->Matches(it->second.job)) continue;
        round.push_back({*id, it->second.job});
        ++certain;
      } else if (const EndedJob* summary = ended_.Find(*id)) {
        if (const Job* cached = ended_.Cached(*id)) {
          if (!matcher->Matches(*cached)) continue;
          round.push_back({*id, *cached});
          ++certain;
        } else {
          if (summary->labels_known() && !matcher->Matches(summary->Probe(*id))) continue;
          round.push_back({*id, std::nullopt});
          if (summary->labels_known()) ++certain;
        }
      } else {
        continue;
      }
      if (certain == wanted || round.size() == 2 * wanted) {
        exhausted = false;
        break;
      }
    }
    if (walk.truncated()) exhausted = false;  // the finished range goes on after the last id
    if (walk.last().empty()) break;
    after = walk.last();
    for (Candidate& c : round) {
      if (!c.job) {
        absl::StatusOr<Job> job = co_await CurrentJob(c.id);
        if (job.status().code() == absl::StatusCode::kNotFound) continue;  // deleted meanwhile
        if (!job.ok()) co_return job.status();
        if (!matcher->Matches(*job)) continue;
        c.job = *std::move(job);
      }
      matched.push_back(*std::move(c.job));
      if (matched.size() > page) break;
    }
  }
  for (Job& job : matched) {
    if (static_cast<std::size_t>(response.jobs_size()) == page) {
      response.set_next_page_token(PageToken(fingerprint, response.jobs(response.jobs_size() - 1).id()));
      break;
    }
    Job* out = response.add_jobs();
    *out = std::move(job);
    out->mutable_spec()->clear_payload();
    out->clear_result();
  }
  co_return response;
}

std::optional<std::string> BrokerEngine::NextCandidate(const JobMatcher& matcher, const std::string& after) const {
  if (matcher.matches_nothing()) return std::nullopt;
  IdWalk walk = CandidateWalk(index_, ended_, matcher, /*newest_first=*/false, after, /*limit=*/1,
                              [this](const std::string& id) { return jobs_.contains(id); });
  const std::string* id = walk.Next();
  if (id == nullptr || (!jobs_.contains(*id) && !ended_.contains(*id))) return std::nullopt;
  return *id;  // every candidate is a live record or a summary
}

runtime::Task<absl::StatusOr<cohort::v1::CancelJobResponse>> BrokerEngine::CancelJob(std::string id) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  cohort::v1::CancelJobResponse response;
  if (const EndedJob* summary = ended_.Find(id)) {
    response.set_state(summary->state);
    response.set_already_ended(true);
    co_return response;
  }
  auto it = jobs_.find(id);
  if (it == jobs_.end()) co_return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
  JobRecord& rec = it->second;
  Job& job = rec.job;
  if (common::IsTerminal(job.state())) {
    response.set_state(job.state());
    response.set_already_ended(true);
    co_return response;
  }
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  Pending p;
  CancelInto(rec, p);
  response.set_state(job.state());
  if (!p.batch.empty()) co_await Persist(std::move(p));
  co_return response;
}

runtime::Task<absl::StatusOr<std::vector<std::string>>> BrokerEngine::ReleaseJobs(cohort::v1::ReleaseJobsRequest request) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (static_cast<std::size_t>(request.releases_size()) > options_.max_submit_batch) {
    co_return absl::InvalidArgumentError(absl::StrCat("releases has ", request.releases_size(),
                                                      " entries: the limit is ", options_.max_submit_batch));
  }
  for (const auto& r : request.releases()) {
    if (r.reason() != cohort::v1::TRANSITION_REASON_RUN_AT && r.reason() != cohort::v1::TRANSITION_REASON_BACKOFF &&
        r.reason() != cohort::v1::TRANSITION_REASON_DEPENDENCIES &&
        r.reason() != cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED) {
      co_return absl::InvalidArgumentError(absl::StrCat("release of ", common::QuoteBounded(r.job_id()), ": reason must be RUN_AT, ",
                                                        "BACKOFF, DEPENDENCIES or DEPENDENCY_FAILED"));
    }
  }
  std::vector<std::string> unknown;
  for (const auto& r : request.releases()) {
    if (!HasJob(r.job_id())) unknown.push_back(r.job_id());
  }
  if (!unknown.empty()) co_return absl::NotFoundError(absl::StrCat("unknown jobs: ", common::QuoteListBounded(unknown)));
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  Pending p;
  std::vector<std::string> changed;
  for (const auto& r : request.releases()) {
    auto it = jobs_.find(r.job_id());
    if (it == jobs_.end()) continue;
    JobRecord& rec = it->second;
    Job& job = rec.job;
    if (job.state() != cohort::v1::JOB_STATE_PENDING || job.attempt() != r.attempt()) continue;  // fenced
    if (r.reason() == cohort::v1::TRANSITION_REASON_DEPENDENCY_FAILED) {
      const auto& parents = job.spec().depends_on();
      if (std::find(parents.begin(), parents.end(), r.parent_job_id()) == parents.end()) continue;
      bool fail = job.spec().on_dependency_failure() == cohort::v1::DEPENDENCY_FAILURE_POLICY_FAIL;
      *job.mutable_error() = MakeError("dependency_failed", absl::StrCat("parent job ", common::QuoteBounded(r.parent_job_id()), " did not succeed"));
      Transition(rec, fail ? cohort::v1::JOB_STATE_FAILED : cohort::v1::JOB_STATE_CANCELLED, r.reason(), p);
    } else {
      job.clear_not_before();
      Transition(rec, cohort::v1::JOB_STATE_QUEUED, r.reason(), p);
    }
    changed.push_back(job.id());
  }
  if (p.batch.empty()) co_return changed;
  DispatchInto(p);
  co_await Persist(std::move(p));
  co_return changed;
}

cohort::v1::ListQueuesResponse BrokerEngine::ListQueues() const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  cohort::v1::ListQueuesResponse response;
  const absl::Time now = Now();
  for (const auto& [name, q] : dispatcher_.queues()) {
    cohort::v1::QueueInfo* info = response.add_queues();
    info->set_name(name);
    info->set_paused(q.paused);
    *info->mutable_limits() = q.limits;
    info->set_depth(static_cast<int64_t>(q.ready.size()));
    info->set_running(q.running);
    for (const auto& [priority, n] : q.ready.DepthByPriority()) {
      auto* d = info->add_depth_by_priority();
      d->set_priority(priority);
      d->set_queued(n);
    }
    if (const ReadyQueue::Entry* e = q.ready.Oldest()) {
      absl::Duration age = now - FromProto(jobs_.at(e->job_id).job.queue_time());
      *info->mutable_oldest_queued_age() = ToProto(age);
    }
    const QueueServing& serving = sessions_.ServingOf(name);
    info->set_executors(serving.executors);
    for (const auto& [kind, n] : q.ready.DepthByKind()) {
      if (serving.Serves(kind)) continue;
      if (info->unserved_kinds_size() < kMaxUnservedKindsListed) info->add_unserved_kinds(kind);
      info->set_unserved_kind_count(info->unserved_kind_count() + 1);
      info->set_unserved(info->unserved() + n);
    }
  }
  return response;
}

absl::Status BrokerEngine::CheckQueueExists(const std::string& name) const {
  if (dispatcher_.Find(name) != nullptr) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("queue ", common::QuoteBounded(name),
                                          " does not exist: CreateQueue creates it, as does the first Submit to it"));
}

absl::Status BrokerEngine::CheckKindRoom(const absl::flat_hash_set<std::string>& fresh) const {
  if (fresh.empty() || index_.KindCount() + fresh.size() <= options_.max_kinds) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "submitting kind ", common::QuoteListBounded(fresh), " would exceed the broker's --max-kinds of ",
      options_.max_kinds, " (", index_.KindCount(), " in use): a kind counts while any job of it is kept; nothing "
      "of this Submit was accepted"));
}

absl::Status BrokerEngine::CheckQueueRoom(const absl::flat_hash_set<std::string>& fresh) const {
  if (fresh.empty() || dispatcher_.queues().size() + fresh.size() <= options_.max_queues) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "creating queue ", common::QuoteListBounded(fresh), " would exceed the broker's --max-queues of ",
      options_.max_queues, " (", dispatcher_.queues().size(), " exist): delete unused queues (DeleteQueue) first"));
}

runtime::Task<absl::StatusOr<cohort::v1::CreateQueueResponse>> BrokerEngine::CreateQueue(
    cohort::v1::CreateQueueRequest request) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  const std::string& name = request.queue();
  if (absl::Status s = common::CheckName(name, "queue "); !s.ok()) co_return s;
  if (absl::Status s = Dispatcher::CheckLimits(request.limits()); !s.ok()) co_return s;
  cohort::v1::CreateQueueResponse response;
  if (dispatcher_.Find(name) != nullptr) {
    response.set_already_existed(true);
    co_return response;
  }
  if (absl::Status s = CheckQueueRoom({name}); !s.ok()) co_return s;
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  dispatcher_.Queue(name).paused = request.paused();
  dispatcher_.SetLimits(name, request.limits());
  Pending p;
  StageQueueSettings(name, p);
  p.queues.insert(name);  // its gauges, at zero
  co_await Persist(std::move(p));
  kLog.Info("queue created", {{"queue", name}, {"paused", request.paused()}});
  co_return response;
}

runtime::Task<absl::StatusOr<cohort::v1::DeleteQueueResponse>> BrokerEngine::DeleteQueue(std::string queue,
                                                                                         bool delete_jobs) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = common::CheckName(queue, "queue "); !s.ok()) co_return s;
  if (absl::Status s = CheckQueueExists(queue); !s.ok()) co_return s;
  // Copied: Remove takes each job out of the index as it goes.
  std::vector<std::string> ids;
  if (const JobIndex::IdSet* held = index_.ByQueue(queue)) ids.assign(held->begin(), held->end());
  if (!ids.empty() && !delete_jobs) {
    co_return absl::FailedPreconditionError(absl::StrCat("queue ", common::QuoteBounded(queue), " holds ", ids.size(),
                                                         " jobs: delete them first, or set delete_jobs"));
  }
  // A deletion's event carries the whole job: finished jobs are read back into jobs_
  // first. Jobs may come, go or change meanwhile, so everything is checked afterwards,
  // with no suspension between the checks and the deletions.
  for (bool loaded = false; !loaded;) {
    loaded = true;
    for (const std::string& id : ids) {
      if (ended_.contains(id) && !co_await Load(id)) continue;  // gone meanwhile
    }
    if (absl::Status s = CheckQueueExists(queue); !s.ok()) co_return s;
    ids.clear();
    if (const JobIndex::IdSet* held = index_.ByQueue(queue)) ids.assign(held->begin(), held->end());
    for (const std::string& id : ids) loaded &= !ended_.contains(id);
  }
  if (!ids.empty() && !delete_jobs) {
    co_return absl::FailedPreconditionError(absl::StrCat("queue ", common::QuoteBounded(queue), " holds ", ids.size(),
                                                         " jobs: delete them first, or set delete_jobs"));
  }
  // All or nothing: every job is checked before any is deleted.
  for (const std::string& id : ids) {
    const Job& job = jobs_.at(id).job;
    if (job.state() == cohort::v1::JOB_STATE_RUNNING) {
      co_return absl::FailedPreconditionError(absl::StrCat("queue ", common::QuoteBounded(queue), "'s job ", id,
                                                           " is RUNNING: cancel it and wait for it to end first"));
    }
    if (const auto* children = dependents_.Of(id)) {
      for (const std::string& child : *children) {
        auto it = jobs_.find(child);
        if (it == jobs_.end() || common::IsTerminal(it->second.job.state()) || it->second.job.spec().queue() == queue) continue;
        co_return absl::FailedPreconditionError(absl::StrCat(
            "queue ", common::QuoteBounded(queue), "'s job ", id, " has an unfinished dependent in queue ",
            common::QuoteBounded(it->second.job.spec().queue()), ": job ", child, " is ",
            cohort::v1::JobState_Name(it->second.job.state()), "; delete or cancel it first"));
      }
    }
  }
  Pending p;
  for (const std::string& id : ids) Remove(jobs_.find(id), p);
  p.batch.DeleteMeta(dispatcher_.SettingsRecord(queue).first);
  dispatcher_.Erase(queue);
  co_await Persist(std::move(p));
  metrics_.QueueDeleted(queue);
  kLog.Info("queue deleted", {{"queue", queue}, {"deleted_jobs", ids.size()}});
  cohort::v1::DeleteQueueResponse response;
  response.set_deleted_jobs(static_cast<std::int64_t>(ids.size()));
  co_return response;
}

runtime::Task<absl::Status> BrokerEngine::PauseQueue(std::string queue, bool paused) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = common::CheckName(queue, "queue "); !s.ok()) co_return s;
  if (absl::Status s = CheckQueueExists(queue); !s.ok()) co_return s;
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  dispatcher_.Queue(queue).paused = paused;
  Pending p;
  StageQueueSettings(queue, p);
  co_await Persist(std::move(p));
  if (paused) {
    kLog.Info("queue paused", {{"queue", queue}});
  } else {
    kLog.Info("queue resumed", {{"queue", queue}});
    Dispatch();
  }
  co_return absl::OkStatus();
}

runtime::Task<absl::StatusOr<cohort::v1::QueueLimits>> BrokerEngine::SetQueueLimits(std::string queue,
                                                                                    cohort::v1::QueueLimits limits) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  if (absl::Status s = common::CheckName(queue, "queue "); !s.ok()) co_return s;
  if (absl::Status s = Dispatcher::CheckLimits(limits); !s.ok()) co_return s;
  if (absl::Status s = CheckQueueExists(queue); !s.ok()) co_return s;
  if (absl::Status admitted = admit_write_(); !admitted.ok()) co_return admitted;
  const cohort::v1::QueueLimits applied = dispatcher_.SetLimits(queue, limits);
  Pending p;
  StageQueueSettings(queue, p);
  co_await Persist(std::move(p));
  kLog.Info("queue limits changed",
            {{"queue", queue},
             {"max_concurrency", applied.has_max_concurrency() ? absl::StrCat(applied.max_concurrency()) : "none"},
             {"max_rate", applied.has_max_rate() ? absl::StrCat(applied.max_rate()) : "none"},
             {"weight", applied.has_weight() ? absl::StrCat(applied.weight()) : "default"}});
  Dispatch();
  co_return applied;
}

cohort::v1::ListExecutorsResponse BrokerEngine::ListExecutors() const {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  return sessions_.List();
}

runtime::Task<absl::StatusOr<std::optional<Job>>> BrokerEngine::WatchJob(std::string id, JobWatcher* watcher) {
  loop_.CheckInLoopThread();  // all engine state belongs to its loop (always on)
  while (true) {
    auto it = jobs_.find(id);
    if (it != jobs_.end()) {
      JobRecord& rec = it->second;
      // Ended and durable: answer now. Ended but not yet durable: the commit notifies.
      if (common::IsTerminal(rec.job.state()) && rec.job.sequence() <= events_.committed()) {
        co_return std::optional<Job>(rec.job);
      }
      rec.watchers.PushBack(watcher);
      co_return std::optional<Job>();
    }
    if (!ended_.contains(id)) co_return absl::NotFoundError(absl::StrCat("job ", common::QuoteBounded(id), " not found"));
    // A summarized job has ended durably; its record is read (unless it changed meanwhile).
    absl::StatusOr<Job> job = co_await CurrentJob(id);
    if (!job.ok()) co_return job.status();
    if (common::IsTerminal(job->state()) && job->sequence() <= events_.committed()) co_return std::optional<Job>(*std::move(job));
  }
}

}  // namespace cohort::broker
