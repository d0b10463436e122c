#include "services/broker/job_validation.h"

#include <cmath>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "libs/common/names.h"
#include "libs/common/quote.h"
#include "libs/common/wire_time.h"

namespace cohort::broker {
namespace {

constexpr absl::string_view kBuiltinKinds[] = {"builtin.echo", "builtin.sleep", "builtin.fail", "builtin.noop"};

std::string Field(int index, absl::string_view field) { return absl::StrCat("jobs[", index, "].", field); }

absl::Status Invalid(int index, absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(Field(index, field), " ", rule));
}

// A Duration field, if set: well formed, not negative, at most kMaxWireDuration.
absl::Status CheckDuration(bool has, const google::protobuf::Duration& d, int index, absl::string_view field) {
  if (!has) return absl::OkStatus();
  return common::DurationFromWire(d, Field(index, field)).status();
}

absl::Status CheckTime(bool has, const google::protobuf::Timestamp& t, int index, absl::string_view field) {
  if (!has) return absl::OkStatus();
  return common::TimeFromWire(t, Field(index, field)).status();
}

absl::Status CheckCommand(const cohort::v1::JobSpec& spec, int index, const SpecLimits& limits) {
  const cohort::v1::Command& command = spec.command();
  if (spec.kind() == "exec" && command.argv().empty()) {
    return Invalid(index, "command.argv", "must name the program for kind \"exec\"");
  }
  if (spec.kind() != "exec" && spec.has_command()) {
    return Invalid(index, "command", "must be unset for every kind but \"exec\"");
  }
  if (static_cast<std::size_t>(command.argv_size()) > limits.max_argv) {
    return Invalid(index, "command.argv", absl::StrCat("has more than ", limits.max_argv, " entries"));
  }
  for (int i = 0; i < command.argv_size(); ++i) {
    if (command.argv(i).size() > limits.max_command_string_bytes) {
      return Invalid(index, absl::StrCat("command.argv[", i, "]"),
                     absl::StrCat("is ", command.argv(i).size(), " bytes: the limit is ",
                                  limits.max_command_string_bytes));
    }
  }
  if (static_cast<std::size_t>(command.env_size()) > limits.max_env) {
    return Invalid(index, "command.env", absl::StrCat("has more than ", limits.max_env, " entries"));
  }
  for (const auto& [key, value] : command.env()) {
    if (key.empty() || key.size() > limits.max_command_string_bytes ||
        value.size() > limits.max_command_string_bytes) {
      return Invalid(index, "command.env", absl::StrCat("keys must be 1-", limits.max_command_string_bytes,
                                                        " bytes and values at most ",
                                                        limits.max_command_string_bytes));
    }
  }
  if (command.cwd().size() > limits.max_cwd_bytes) {
    return Invalid(index, "command.cwd",
                   absl::StrCat("is ", command.cwd().size(), " bytes: the limit is ", limits.max_cwd_bytes));
  }
  return absl::OkStatus();
}

absl::Status CheckBackoff(const cohort::v1::JobSpec& spec, int index) {
  if (!spec.has_backoff()) return absl::OkStatus();
  const cohort::v1::Backoff& b = spec.backoff();
  if (absl::Status s = CheckDuration(b.has_initial(), b.initial(), index, "backoff.initial"); !s.ok()) return s;
  if (absl::Status s = CheckDuration(b.has_max(), b.max(), index, "backoff.max"); !s.ok()) return s;
  // Written so that NaN fails: every comparison with NaN is false.
  if (!(b.multiplier() == 0 || (b.multiplier() >= 1 && std::isfinite(b.multiplier())))) {
    return Invalid(index, "backoff.multiplier", "must be 0 (the default) or a finite number >= 1");
  }
  if (!(b.jitter() >= 0 && b.jitter() <= 1)) return Invalid(index, "backoff.jitter", "must be in 0..1");
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckKindName(absl::string_view kind, absl::string_view what) {
  if (absl::Status s = common::CheckName(kind, what); !s.ok()) return s;
  if (absl::StartsWith(kind, "builtin.")) {
    bool known = false;
    for (absl::string_view k : kBuiltinKinds) known = known || k == kind;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(what, common::QuoteBounded(kind), " is not a built-in: use one of ",
                                                     absl::StrJoin(kBuiltinKinds, ", ")));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateSpec(const cohort::v1::JobSpec& spec, int index, const SpecLimits& limits) {
  // First, so that no other rule walks an oversized spec's fields.
  if (const std::size_t bytes = spec.ByteSizeLong(); bytes > limits.max_spec_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("jobs[", index, "] is ", bytes,
                                                   " bytes serialized: the limit is ", limits.max_spec_bytes));
  }
  if (absl::Status s = common::CheckName(spec.queue(), Field(index, "queue ")); !s.ok()) return s;
  if (absl::Status s = CheckKindName(spec.kind(), Field(index, "kind ")); !s.ok()) return s;
  if (absl::Status s = CheckCommand(spec, index, limits); !s.ok()) return s;
  if (spec.payload().size() > limits.max_payload_bytes) {
    return Invalid(index, "payload", absl::StrCat("is ", spec.payload().size(), " bytes: the limit is ",
                                                  limits.max_payload_bytes));
  }
  if (static_cast<std::size_t>(spec.labels_size()) > limits.max_labels) {
    return Invalid(index, "labels", absl::StrCat("has more than ", limits.max_labels, " entries"));
  }
  for (const auto& [key, value] : spec.labels()) {
    if (key.empty() || key.size() > limits.max_label_bytes || value.size() > limits.max_label_bytes) {
      return Invalid(index, "labels", absl::StrCat("keys must be 1-", limits.max_label_bytes,
                                                   " bytes and values at most ", limits.max_label_bytes));
    }
  }
  if (absl::Status s = CheckTime(spec.has_run_at(), spec.run_at(), index, "run_at"); !s.ok()) return s;
  if (absl::Status s = CheckDuration(spec.has_delay(), spec.delay(), index, "delay"); !s.ok()) return s;
  if (absl::Status s = CheckDuration(spec.has_timeout(), spec.timeout(), index, "timeout"); !s.ok()) return s;
  if (absl::Status s = CheckTime(spec.has_deadline(), spec.deadline(), index, "deadline"); !s.ok()) return s;
  if (absl::Status s = CheckDuration(spec.has_result_ttl(), spec.result_ttl(), index, "result_ttl"); !s.ok()) {
    return s;
  }
  if (spec.max_attempts() < 0 || spec.max_attempts() > limits.max_attempts) {
    return Invalid(index, "max_attempts", absl::StrCat("must be in 0..", limits.max_attempts, " (0 means 1)"));
  }
  if (absl::Status s = CheckBackoff(spec, index); !s.ok()) return s;
  if (static_cast<std::size_t>(spec.depends_on_size() + spec.depends_on_index_size()) > limits.max_depends_on) {
    return Invalid(index, "depends_on", absl::StrCat("has more than ", limits.max_depends_on, " parents"));
  }
  if (!cohort::v1::DependencyFailurePolicy_IsValid(spec.on_dependency_failure())) {
    return Invalid(index, "on_dependency_failure",
                   absl::StrCat(spec.on_dependency_failure(), " is unknown: use CANCEL or FAIL"));
  }
  if (spec.idempotency_key().size() > 256) return Invalid(index, "idempotency_key", "is longer than 256 bytes");
  return absl::OkStatus();
}

}  // namespace cohort::broker
