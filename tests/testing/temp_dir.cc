#include "tests/testing/temp_dir.h"

#include <stdlib.h>
#include <string.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

namespace cohort::testing {

TempDir::TempDir(std::string_view prefix) {
  const char* root = std::getenv("TEST_TMPDIR");
  if (root == nullptr || *root == '\0') root = "/tmp";
  std::string pattern = std::string(root) + "/" + std::string(prefix) + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) {
    std::fprintf(stderr, "TempDir: cannot create %s: %s\n", pattern.c_str(), strerror(errno));
    std::abort();
  }
  std::error_code error;
  const std::filesystem::path absolute = std::filesystem::absolute(buffer.data(), error);
  path_ = error ? std::string(buffer.data()) : absolute.string();
}

TempDir::~TempDir() {
  std::error_code error;
  std::filesystem::remove_all(path_, error);
  if (error) {
    std::fprintf(stderr, "TempDir: cannot remove %s: %s\n", path_.c_str(), error.message().c_str());
  }
}

std::string TempDir::Path(std::string_view name) const { return path_ + "/" + std::string(name); }

}  // namespace cohort::testing
