#include "services/executor/env_denylist.h"

#include <array>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace cohort::executor {
namespace {

constexpr std::array<std::string_view, 3> kDeniedPrefixes = {"LD_", "MALLOC_", "BASH_FUNC_"};

constexpr std::array<std::string_view, 16> kDeniedNames = {
    "GLIBC_TUNABLES", "GCONV_PATH", "LOCPATH",  "NLSPATH",  "GETCONF_DIR", "TZDIR",    "HOSTALIASES", "LOCALDOMAIN",
    "RES_OPTIONS",    "RESOLV_HOST_CONF", "NIS_PATH", "BASH_ENV", "ENV",   "SHELLOPTS", "BASHOPTS",    "PS4",
};

constexpr std::size_t kMaxQuotedName = 64;

}  // namespace

bool IsDeniedJobEnvName(const std::string& name) {
  for (std::string_view prefix : kDeniedPrefixes) {
    if (name.compare(0, prefix.size(), prefix) == 0) return true;
  }
  for (std::string_view denied : kDeniedNames) {
    if (name == denied) return true;
  }
  return false;
}

absl::Status CheckJobEnv(const std::map<std::string, std::string>& env) {
  for (const auto& [name, value] : env) {
    if (!IsDeniedJobEnvName(name)) continue;
    return absl::PermissionDeniedError(absl::StrCat(
        "command.env sets \"", name.substr(0, kMaxQuotedName),
        "\": executors refuse LD_*, MALLOC_*, GLIBC_TUNABLES, GCONV_PATH and the other variables that make the "
        "loader, glibc or a shell run code the allowlist did not admit (see README, exec jobs)"));
  }
  return absl::OkStatus();
}

}  // namespace cohort::executor
