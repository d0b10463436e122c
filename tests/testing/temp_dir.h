#pragma once

#include <string>
#include <string_view>

namespace cohort::testing {

// A fresh, empty directory of the test's own, under $TEST_TMPDIR (or /tmp when that is
// unset), named `<prefix>-XXXXXX`. The directory and everything in it is removed when
// the TempDir is destroyed. Creation failure aborts the test with the reason.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "cohort");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // The directory's absolute path, without a trailing slash.
  const std::string& path() const { return path_; }
  // `path()/name`; the file or directory is not created.
  std::string Path(std::string_view name) const;

 private:
  std::string path_;
};

}  // namespace cohort::testing
