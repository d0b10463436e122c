#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "protos/cohort/v1/job.pb.h"
#include "services/cli/flag_set.h"

namespace cohort::cli {

// The flags that describe a job, shared by `submit` and `schedules create` (whose job
// template takes the same flags), and the JobSpec built from them:
//
//   QUEUE KIND [PAYLOAD | @FILE | -] [-- ARGV...]
//   --priority --delay --timeout --attempts --backoff-initial --backoff-multiplier
//   --backoff-max --backoff-jitter --label=K=V --env=K=V --cwd --shield --result-ttl
//   --depends-on=ID --on-dependency-failure --idempotency-key   (submit only)
//
// Only flags given on the command line are set in the spec, so the broker's defaults
// apply to the rest; the broker validates the spec (INVALID_ARGUMENT names the field).
// Binds its members to the FlagSet: it must outlive parsing and not move.
class JobSpecFlags {
 public:
  // A schedule's template leaves out what scheduler.proto forbids in it: depends_on
  // and the idempotency key (set per slot by the scheduler).
  enum class Use { kSubmit, kScheduleTemplate };

  JobSpecFlags(FlagSet& flags, Use use);
  JobSpecFlags(const JobSpecFlags&) = delete;
  JobSpecFlags& operator=(const JobSpecFlags&) = delete;

  // The synopsis of the job's arguments, for usage lines.
  static constexpr char kArgs[] = "QUEUE KIND [PAYLOAD | @FILE | -] [-- ARGV...]";

  // Builds the spec once `flags` has parsed the command line. `args` is QUEUE KIND
  // [PAYLOAD] (2 or 3 entries); `argv` is what followed "--" (the command of an exec
  // job). INVALID_ARGUMENT for a malformed --label/--env/--on-dependency-failure or an
  // unreadable payload file.
  absl::StatusOr<cohort::v1::JobSpec> Build(const FlagSet& flags, absl::Span<const std::string> args,
                                            const std::vector<std::string>& argv) const;

 private:
  int priority_ = 0;
  absl::Duration delay_;
  absl::Duration timeout_;
  int attempts_ = 0;
  absl::Duration backoff_initial_;
  double backoff_multiplier_ = 0;
  absl::Duration backoff_max_;
  double backoff_jitter_ = 0;
  std::vector<std::string> labels_;
  std::vector<std::string> env_;
  std::string cwd_;
  bool shield_ = false;
  absl::Duration result_ttl_;
  std::vector<std::string> depends_on_;
  std::string on_dependency_failure_;
  std::string idempotency_key_;
};

}  // namespace cohort::cli
