#include "services/cli/command.h"

#include "absl/strings/str_cat.h"

namespace cohort::cli {

std::optional<ExitCode> ParseCommandLine(FlagSet& flags, absl::Span<const std::string> args,
                                         std::size_t min_positional, std::size_t max_positional,
                                         ParsedArgs* parsed) {
  absl::StatusOr<ParsedArgs> result = flags.Parse(args);
  if (!result.ok()) return FailLocal(result.status());
  if (result->help) {
    PrintRaw(flags.Help());
    return ExitCode::kOk;
  }
  const std::size_t n = result->positional.size();
  if (n < min_positional || n > max_positional) {
    const std::string expected = min_positional == max_positional ? absl::StrCat(min_positional)
                                 : max_positional == SIZE_MAX     ? absl::StrCat("at least ", min_positional)
                                                                  : absl::StrCat(min_positional, " to ", max_positional);
    return Fail(ExitCode::kUsage,
                absl::StrCat("expected ", expected, " argument", expected == "1" ? "" : "s", ", got ", n,
                             " (see --help)"));
  }
  *parsed = std::move(*result);
  return std::nullopt;
}

}  // namespace cohort::cli
