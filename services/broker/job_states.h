#pragma once

#include "libs/common/job_states.h"

namespace cohort::broker {

// The job-state predicate under its broker name, for the files not yet moved to
// libs/common/job_states.h (broker_engine_executors.cc). New code includes that header.
using common::IsTerminal;

}  // namespace cohort::broker
