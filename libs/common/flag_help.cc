#include "libs/common/flag_help.h"

#include <algorithm>
#include <utility>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace cohort::common {
namespace {

std::vector<std::string>& ShownPaths() {
  static auto* paths = new std::vector<std::string>();
  return *paths;
}

bool Shown(absl::string_view file) {
  for (const std::string& path : ShownPaths()) {
    if (absl::StrContains(file, path)) return true;
  }
  return false;
}

std::string Spelling(const absl::CommandLineFlag& flag) {
  std::string name = absl::StrReplaceAll(flag.Name(), {{"_", "-"}});
  if (flag.IsOfType<bool>()) return absl::StrCat("--", name);
  absl::string_view placeholder = "VALUE";
  if (flag.IsOfType<int>() || flag.IsOfType<int64_t>() || flag.IsOfType<uint32_t>() || flag.IsOfType<uint64_t>()) {
    placeholder = "N";
  } else if (flag.IsOfType<double>()) {
    placeholder = "NUMBER";
  } else if (flag.IsOfType<absl::Duration>()) {
    placeholder = "DURATION";
  } else if (flag.IsOfType<std::vector<std::string>>()) {
    placeholder = "A,B,...";
  }
  return absl::StrCat("--", name, "=", placeholder);
}

}  // namespace

void ShowFlagsDefinedIn(std::vector<std::string> paths) {
  ShownPaths() = paths;
  // absl's --helpfull and friends are never reached (ParseFlagsOrExit answers --help),
  // but keep its filter the same for anything else that prints usage.
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) { return Shown(file); };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
}

std::string FlagHelp(absl::string_view program) {
  std::vector<std::pair<std::string, const absl::CommandLineFlag*>> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!flag->IsRetired() && Shown(flag->Filename())) flags.emplace_back(Spelling(*flag), flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto& a, const auto& b) { return a.second->Name() < b.second->Name(); });
  std::size_t column = std::string("--version").size();
  for (const auto& [spelling, flag] : flags) column = std::max(column, spelling.size());

  std::string out = absl::StrCat("usage: ", program, " [flags]\n\n", absl::ProgramUsageMessage(), "\n\nflags:\n");
  for (const auto& [spelling, flag] : flags) {
    std::string line = absl::StrFormat("  %-*s  %s", static_cast<int>(column), spelling, flag->Help());
    const std::string default_value = flag->DefaultValue();
    if (!default_value.empty() && !flag->IsOfType<bool>()) {
      absl::StrAppend(&line, " (default ", flag->IsOfType<std::string>() ? absl::StrCat("\"", default_value, "\"")
                                                                         : default_value, ")");
    } else if (default_value == "true") {
      absl::StrAppend(&line, " (default true; --no", spelling.substr(2), " turns it off)");
    }
    absl::StrAppend(&out, line, "\n");
  }
  absl::StrAppend(&out, absl::StrFormat("  %-*s  %s\n", static_cast<int>(column), "--help", "this help"));
  absl::StrAppend(&out, absl::StrFormat("  %-*s  %s\n", static_cast<int>(column), "--version",
                                        "print the version and exit"));
  absl::StrAppend(&out, "\nexit code 2: a bad flag or a failed start, with one line on stderr\n");
  return out;
}

}  // namespace cohort::common
