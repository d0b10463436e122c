#include "libs/common/flag_parse.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/common/flag_help.h"
#include "libs/common/flag_value_reason.h"
#include "libs/common/quote.h"
#include "libs/common/version_line.h"

namespace cohort::common {
namespace {

[[noreturn]] void Usage(const char* program, const std::string& reason) {
  std::fprintf(stderr, "%s: %s\n", program, reason.c_str());
  std::exit(2);
}

// Abseil's parse error is "Illegal value 'x' specified for flag 'y'[; reason]": keep
// only the reason, else say what a valid value looks like.
std::string Reason(const absl::CommandLineFlag& flag, const std::string& error) {
  if (std::size_t sep = error.find("; "); sep != std::string::npos) return error.substr(sep + 2);
  if (flag.IsOfType<bool>()) return ExpectedValue<bool>();
  if (flag.IsOfType<int>()) return ExpectedValue<int>();
  if (flag.IsOfType<int64_t>()) return ExpectedValue<int64_t>();
  if (flag.IsOfType<uint32_t>()) return ExpectedValue<uint32_t>();
  if (flag.IsOfType<uint64_t>()) return ExpectedValue<uint64_t>();
  if (flag.IsOfType<double>()) return ExpectedValue<double>();
  if (flag.IsOfType<absl::Duration>()) return ExpectedValue<absl::Duration>();
  return ExpectedValue<void>();
}

// A flag name as typed, cut to the quoting bound: names are the caller's text too.
std::string Bounded(const std::string& name) {
  return name.size() <= kQuotePrefixBytes ? name : absl::StrCat(name.substr(0, kQuotePrefixBytes), "...");
}

}  // namespace

void ParseFlagsOrExit(const char* program, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg == "--version") {
      std::printf("%s\n", VersionLine(program).c_str());
      std::exit(0);
    }
    if (arg == "--help" || arg == "-h" || arg == "--helpfull" || arg == "--helpshort") {
      std::fputs(FlagHelp(program).c_str(), stdout);
      std::exit(0);
    }
    if (!absl::StartsWith(arg, "-") || arg == "-") {
      Usage(program, absl::StrCat("unexpected argument ", QuoteBounded(arg), ": ", program,
                                  " takes only flags (see --help)"));
    }
    absl::string_view body = arg.substr(absl::StartsWith(arg, "--") ? 2 : 1);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (std::size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    const std::string dashed = absl::StrReplaceAll(name, {{"_", "-"}});
    const std::string key = absl::StrReplaceAll(name, {{"-", "_"}});
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(key);
    std::string negated;
    if ((flag == nullptr || flag->IsRetired()) && absl::StartsWith(key, "no") && !has_value) {
      absl::CommandLineFlag* positive = absl::FindCommandLineFlag(key.substr(2));
      if (positive != nullptr && positive->IsOfType<bool>()) {
        flag = positive;
        negated = "false";
      }
    }
    if (flag == nullptr || flag->IsRetired()) {
      Usage(program, absl::StrCat("unknown flag --", Bounded(dashed), " (see --help)"));
    }
    std::string text;
    if (!negated.empty()) {
      text = negated;
    } else if (has_value) {
      text = std::string(value);
    } else if (flag->IsOfType<bool>()) {
      text = "true";
    } else if (i + 1 < argc) {
      text = argv[++i];
    } else {
      Usage(program, absl::StrCat("flag --", Bounded(dashed), " needs a value (--", Bounded(dashed), "=VALUE)"));
    }
    std::string error;
    if (!flag->ParseFrom(text, &error)) {
      Usage(program, absl::StrCat("--", Bounded(dashed), " ", QuoteBounded(text), " is invalid: ", Reason(*flag, error)));
    }
  }
}

}  // namespace cohort::common
