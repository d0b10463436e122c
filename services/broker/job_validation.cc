#include "services/broker/job_validation.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cohort::broker {
namespace {

constexpr absl::string_view kBuiltinKinds[] = {"builtin.echo", "builtin.sleep", "builtin.fail", "builtin.noop"};

bool IsNameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'; }

bool IsName(absl::string_view s, std::size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

absl::Status Invalid(int index, absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("jobs[", index, "].", field, " ", rule));
}

bool IsNegative(const google::protobuf::Duration& d) { return d.seconds() < 0 || d.nanos() < 0; }

}  // namespace

bool IsValidQueueName(absl::string_view queue) { return IsName(queue, 64); }

absl::Status ValidateSpec(const cohort::v1::JobSpec& spec, int index, const SpecLimits& limits) {
  if (!IsValidQueueName(spec.queue())) {
    return Invalid(index, "queue", absl::StrCat("\"", spec.queue(), "\" is invalid: use [a-z0-9._-]{1,64}"));
  }
  const std::string& kind = spec.kind();
  if (!IsName(kind, 64)) {
    return Invalid(index, "kind", absl::StrCat("\"", kind, "\" is invalid: use [a-z0-9._-]{1,64}"));
  }
  if (absl::StartsWith(kind, "builtin.")) {
    bool known = false;
    for (absl::string_view k : kBuiltinKinds) known = known || k == kind;
    if (!known) {
      return Invalid(index, "kind", absl::StrCat("\"", kind, "\" is not a built-in: use one of ",
                                                 absl::StrJoin(kBuiltinKinds, ", ")));
    }
  }
  if (kind == "exec" && spec.command().argv().empty()) {
    return Invalid(index, "command.argv", "must name the program for kind \"exec\"");
  }
  if (static_cast<std::size_t>(spec.command().argv_size()) > limits.max_argv) {
    return Invalid(index, "command.argv", absl::StrCat("has more than ", limits.max_argv, " entries"));
  }
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
  if (spec.has_delay() && IsNegative(spec.delay())) return Invalid(index, "delay", "must not be negative");
  if (spec.has_timeout() && IsNegative(spec.timeout())) return Invalid(index, "timeout", "must not be negative");
  if (spec.has_result_ttl() && IsNegative(spec.result_ttl())) {
    return Invalid(index, "result_ttl", "must not be negative");
  }
  if (spec.max_attempts() < 0 || spec.max_attempts() > limits.max_attempts) {
    return Invalid(index, "max_attempts", absl::StrCat("must be in 0..", limits.max_attempts, " (0 means 1)"));
  }
  if (spec.has_backoff()) {
    const auto& b = spec.backoff();
    if (IsNegative(b.initial()) || IsNegative(b.max())) return Invalid(index, "backoff", "durations must not be negative");
    if (b.multiplier() != 0 && b.multiplier() < 1) return Invalid(index, "backoff.multiplier", "must be >= 1");
    if (b.jitter() < 0 || b.jitter() > 1) return Invalid(index, "backoff.jitter", "must be in 0..1");
  }
  if (static_cast<std::size_t>(spec.depends_on_size() + spec.depends_on_index_size()) > limits.max_depends_on) {
    return Invalid(index, "depends_on", absl::StrCat("has more than ", limits.max_depends_on, " parents"));
  }
  if (spec.idempotency_key().size() > 256) return Invalid(index, "idempotency_key", "is longer than 256 bytes");
  return absl::OkStatus();
}

}  // namespace cohort::broker
