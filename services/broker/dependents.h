#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "protos/cohort/v1/job.pb.h"

namespace cohort::broker {

// The reverse of JobSpec.depends_on: for each parent id, the stored jobs that list it,
// so that DeleteJob can tell in O(dependents) whether unfinished jobs still wait on a
// parent. Holds ids only; the engine adds a job when it is created or recovered and
// removes it when its record goes (deletion, expiry). Loop thread only, as the engine.
class Dependents {
 public:
  void Add(const cohort::v1::Job& job) {
    for (const std::string& parent : job.spec().depends_on()) children_[parent].insert(job.id());
  }
  void Remove(const cohort::v1::Job& job) {
    for (const std::string& parent : job.spec().depends_on()) {
      auto it = children_.find(parent);
      if (it == children_.end()) continue;
      it->second.erase(job.id());
      if (it->second.empty()) children_.erase(it);
    }
  }
  // The jobs that list `parent` in depends_on; null when there are none.
  const absl::flat_hash_set<std::string>* Of(const std::string& parent) const {
    auto it = children_.find(parent);
    return it == children_.end() ? nullptr : &it->second;
  }

 private:
  absl::flat_hash_map<std::string, absl::flat_hash_set<std::string>> children_;
};

}  // namespace cohort::broker
