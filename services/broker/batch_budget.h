#pragma once

#include <cstddef>

#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// Upper bounds on what the engine stages in a JobBatch, so that it can start a new
// batch before one would exceed the store's BatchLimits (a commit the store refuses
// stops the broker) and refuse a Submit that could not fit in one batch.
//
// One transition stages the job (its serialized size plus key), its event (a summary
// of the job: never larger) and at most four index entries (keys of at most ~600
// bytes each), so 2 × the job's size plus kTransitionOverheadBytes, in at most
// kTransitionRecords records.
inline constexpr std::size_t kTransitionOverheadBytes = 4096;
inline constexpr std::size_t kTransitionRecords = 6;
// What a new job adds to its spec (id, times, attempt fields, an error) before its
// first transition.
inline constexpr std::size_t kNewJobOverheadBytes = 1024;

// Bytes one Transition of `job` may add to a batch.
inline std::size_t TransitionBytes(const cohort::v1::Job& job) {
  return 2 * job.ByteSizeLong() + kTransitionOverheadBytes;
}

// Transitions Submit stages for one spec: its first state, and FAILED in the same
// commit when its deadline has already passed.
inline std::size_t SubmitTransitions(const cohort::v1::JobSpec& spec) { return spec.has_deadline() ? 2 : 1; }

// Bytes Submit may stage for one spec (every transition of it, in one batch).
inline std::size_t SubmitBytes(const cohort::v1::JobSpec& spec) {
  return SubmitTransitions(spec) * (2 * (spec.ByteSizeLong() + kNewJobOverheadBytes) + kTransitionOverheadBytes);
}

// The largest spec whose Submit alone (with a deadline) fits in a batch of
// `batch_max_bytes`: the broker refuses to start with a --max-spec-bytes above it.
inline constexpr std::size_t MaxSpecBytesFor(std::size_t batch_max_bytes) {
  return (batch_max_bytes / 2 - kTransitionOverheadBytes) / 2 - kNewJobOverheadBytes;
}

}  // namespace cohort::broker
