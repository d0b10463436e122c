#pragma once

#include "protos/cohort/v1/job.pb.h"

namespace cohort::common {

// The job-state predicates every Cohort process and client shares, each written once.

// SUCCEEDED, FAILED or CANCELLED: the job will never change state again.
inline bool IsTerminal(cohort::v1::JobState s) {
  return s == cohort::v1::JOB_STATE_SUCCEEDED || s == cohort::v1::JOB_STATE_FAILED ||
         s == cohort::v1::JOB_STATE_CANCELLED;
}

// Ended FAILED or CANCELLED: asyncio's "raised an exception" (CancelledError counts),
// as Gather without return_exceptions and WaitFor see it. Wait's FIRST_EXCEPTION is
// narrower: only FAILED counts there, as a cancelled task does not in asyncio.wait.
inline bool EndedWithError(cohort::v1::JobState s) {
  return s == cohort::v1::JOB_STATE_FAILED || s == cohort::v1::JOB_STATE_CANCELLED;
}

}  // namespace cohort::common
