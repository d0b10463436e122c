#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/map.h"

namespace cohort::broker {

// One requirement of a label selector, over JobSpec.labels.
struct LabelRequirement {
  enum class Op {
    kEquals,     // `k=v`, `k==v`: has label k with value v
    kNotEquals,  // `k!=v`: has no label k, or its value is not v
    kIn,         // `k in (a,b)`: has label k with one of the values
    kNotIn,      // `k notin (a,b)`: has no label k, or its value is none of them
    kExists,     // `k`: has label k
    kNotExists,  // `!k`: has no label k
  };
  std::string key;
  Op op = Op::kExists;
  // One value for kEquals/kNotEquals, at least one for kIn/kNotIn, none otherwise.
  std::vector<std::string> values;

  bool Matches(const google::protobuf::Map<std::string, std::string>& labels) const;
};

// A parsed Kubernetes-style label selector: comma-separated requirements that must all
// hold. The empty selector (or only whitespace) matches every job.
//
// Grammar (whitespace allowed between tokens):
//   selector    := requirement ("," requirement)*
//   requirement := "!" key | key | key ("=" | "==" | "!=") value
//                | key ("in" | "notin") "(" value ("," value)* ")"
// A key or value is a run of bytes other than whitespace and `,=!()`; a value after
// `=`, `==` or `!=` may be empty (`k=` matches an empty value). Unlike Kubernetes,
// keys are not restricted to DNS names, since JobSpec.labels are not.
//
//   absl::StatusOr<LabelSelector> s = LabelSelector::Parse("team=data,tier in (a,b),!canary");
//   if (s.ok() && s->Matches(job.spec().labels())) ...
//
// Bounded: at most kMaxBytes of text and kMaxRequirements requirements; Parse is
// linear in the text. Immutable once parsed, so safe to share across threads.
class LabelSelector {
 public:
  static constexpr std::size_t kMaxBytes = 1024;
  static constexpr std::size_t kMaxRequirements = 20;

  // INVALID_ARGUMENT naming `field`, the byte offset of the error and what was
  // expected there, quoting a bounded prefix of the text from that offset.
  static absl::StatusOr<LabelSelector> Parse(absl::string_view text, absl::string_view field = "label_selector");

  bool Matches(const google::protobuf::Map<std::string, std::string>& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

 private:
  std::vector<LabelRequirement> requirements_;
};

}  // namespace cohort::broker
