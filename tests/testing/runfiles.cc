#include "tests/testing/runfiles.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace cohort::testing {

std::string BinaryPath(std::string_view workspace_relative) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  if (srcdir == nullptr || *srcdir == '\0') {
    std::fprintf(stderr, "BinaryPath(%.*s): TEST_SRCDIR is not set; run the test with bazel test\n",
                 static_cast<int>(workspace_relative.size()), workspace_relative.data());
    std::abort();
  }
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (workspace == nullptr || *workspace == '\0') workspace = "cohort";
  std::string path = std::string(srcdir) + "/" + workspace + "/" + std::string(workspace_relative);
  if (access(path.c_str(), X_OK) != 0) {
    std::fprintf(stderr,
                 "BinaryPath: %s is not an executable in the runfiles; add its target to the "
                 "test's data = [...]\n",
                 path.c_str());
    std::abort();
  }
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(path, error);
  return error ? path : absolute.string();
}

}  // namespace cohort::testing
