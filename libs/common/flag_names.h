#pragma once

#include <string>
#include <vector>

namespace cohort::common {

// Cohort's flags are spelled with dashes (--data-dir, --metrics-listen), as design.md
// fixes them; Abseil's flags library only knows underscores. DashedArgs rewrites the
// name part of every `--flag[=value]` argument (before any '=') so both spellings
// work, leaving values and positional arguments untouched. The returned object owns
// the strings that argv() points into.
class DashedArgs {
 public:
  DashedArgs(int argc, char** argv);
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> args_;
  std::vector<char*> pointers_;
};

}  // namespace cohort::common
