#include "services/broker/job_index.h"

namespace cohort::broker {

void JobIndex::Add(const cohort::v1::Job& job) {
  by_state_[static_cast<int>(job.state())].insert(job.id());
  by_queue_[job.spec().queue()].insert(job.id());
  by_kind_[job.spec().kind()].insert(job.id());
}

void JobIndex::Move(const cohort::v1::Job& job, cohort::v1::JobState from) {
  if (from == job.state()) return;
  Erase(by_state_, static_cast<int>(from), job.id());
  by_state_[static_cast<int>(job.state())].insert(job.id());
}

void JobIndex::Remove(const cohort::v1::Job& job) {
  Erase(by_state_, static_cast<int>(job.state()), job.id());
  Erase(by_queue_, job.spec().queue(), job.id());
  Erase(by_kind_, job.spec().kind(), job.id());
}

}  // namespace cohort::broker
