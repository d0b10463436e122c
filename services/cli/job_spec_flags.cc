#include "libs/common/proto_time.h"
#include "services/cli/job_spec_flags.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/cli/input.h"
#include "services/cli/output.h"

namespace cohort::cli {

using common::ToProto;

namespace {

// Splits "KEY=VALUE" items of a list flag into `out`.
absl::Status AddPairs(absl::string_view flag, const std::vector<std::string>& items,
                      google::protobuf::Map<std::string, std::string>* out) {
  for (const std::string& item : items) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || item.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " \"", item, "\" is invalid: use KEY=VALUE"));
    }
    (*out)[kv.first] = kv.second;
  }
  return absl::OkStatus();
}

}  // namespace

JobSpecFlags::JobSpecFlags(FlagSet& flags, Use use) {
  flags.Add("priority", &priority_, "higher runs first; any int32");
  flags.Add("delay", &delay_, "run no sooner than this from now, e.g. 30s");
  flags.Add("timeout", &timeout_, "limit on each attempt's run time, e.g. 5m (unset: none)");
  flags.Add("attempts", &attempts_, "attempts in total, the first included (unset: the broker's default, 1)");
  flags.Add("backoff-initial", &backoff_initial_, "retry delay after the first failed attempt");
  flags.Add("backoff-multiplier", &backoff_multiplier_, "growth of the retry delay per attempt (>= 1)");
  flags.Add("backoff-max", &backoff_max_, "longest retry delay");
  flags.Add("backoff-jitter", &backoff_jitter_, "random spread of the retry delay, in [0, 1]");
  flags.AddList("label", &labels_, "metadata kept with the job", "KEY=VALUE");
  flags.AddList("env", &env_, "a variable of an exec job's environment", "KEY=VALUE");
  flags.Add("cwd", &cwd_, "an exec job's working directory", "DIR");
  flags.Add("shield", &shield_, "a wait-for timeout does not cancel the job (cancel still does)");
  flags.Add("result-ttl", &result_ttl_, "how long the ended job and its result are kept (unset: the broker's)");
  if (use == Use::kSubmit) {
    flags.AddList("depends-on", &depends_on_, "a job that must succeed first", "JOB_ID");
    flags.Add("on-dependency-failure", &on_dependency_failure_, "cancel (the default) or fail, if a parent fails",
              "POLICY");
    flags.Add("idempotency-key", &idempotency_key_, "submitting the same key again returns the existing job",
              "KEY");
  }
}

absl::StatusOr<cohort::v1::JobSpec> JobSpecFlags::Build(const FlagSet& flags, absl::Span<const std::string> args,
                                                        const std::vector<std::string>& argv) const {
  cohort::v1::JobSpec spec;
  spec.set_queue(args[0]);
  spec.set_kind(args[1]);
  if (args.size() > 2) {
    absl::StatusOr<std::string> payload = ReadPayloadArg(args[2]);
    if (!payload.ok()) return payload.status();
    spec.set_payload(*std::move(payload));
  }
  if (!argv.empty() || flags.IsSet("env") || flags.IsSet("cwd")) {
    cohort::v1::Command* command = spec.mutable_command();
    for (const std::string& arg : argv) command->add_argv(arg);
    if (absl::Status s = AddPairs("env", env_, command->mutable_env()); !s.ok()) return s;
    command->set_cwd(cwd_);
  }
  if (absl::Status s = AddPairs("label", labels_, spec.mutable_labels()); !s.ok()) return s;
  spec.set_priority(priority_);
  if (flags.IsSet("delay")) *spec.mutable_delay() = ToProto(delay_);
  if (flags.IsSet("timeout")) *spec.mutable_timeout() = ToProto(timeout_);
  spec.set_max_attempts(attempts_);
  if (flags.IsSet("backoff-initial")) *spec.mutable_backoff()->mutable_initial() = ToProto(backoff_initial_);
  if (flags.IsSet("backoff-multiplier")) spec.mutable_backoff()->set_multiplier(backoff_multiplier_);
  if (flags.IsSet("backoff-max")) *spec.mutable_backoff()->mutable_max() = ToProto(backoff_max_);
  if (flags.IsSet("backoff-jitter")) spec.mutable_backoff()->set_jitter(backoff_jitter_);
  spec.set_shield(shield_);
  if (flags.IsSet("result-ttl")) *spec.mutable_result_ttl() = ToProto(result_ttl_);
  for (const std::string& id : depends_on_) spec.add_depends_on(id);
  if (flags.IsSet("on-dependency-failure")) {
    absl::StatusOr<cohort::v1::DependencyFailurePolicy> policy =
        ParseChoice<cohort::v1::DependencyFailurePolicy>(
            "on-dependency-failure", on_dependency_failure_,
            {{"cancel", cohort::v1::DEPENDENCY_FAILURE_POLICY_CANCEL},
             {"fail", cohort::v1::DEPENDENCY_FAILURE_POLICY_FAIL}});
    if (!policy.ok()) return policy.status();
    spec.set_on_dependency_failure(*policy);
  }
  spec.set_idempotency_key(idempotency_key_);
  return spec;
}

}  // namespace cohort::cli
