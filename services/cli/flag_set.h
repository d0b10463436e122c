#pragma once

#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/flags/marshalling.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "libs/common/flag_value_reason.h"
#include "libs/common/quote.h"

namespace cohort::cli {

// What FlagSet::Parse found besides the flags it stored.
struct ParsedArgs {
  // Arguments that are not flags, in order.
  std::vector<std::string> positional;
  // Everything after a bare "--", verbatim (an exec job's argv).
  std::vector<std::string> after_dashes;
  // --help or -h was given; the caller prints Help() and exits 0.
  bool help = false;
  // With Mode::kStopAtPositional: how many arguments were consumed.
  std::size_t consumed = 0;
};

// The flags of one cohortctl command, bound to variables the command owns.
//
// Values are parsed with Abseil's flag marshalling (absl::ParseFlag), so every type
// Abseil flags accept works, absl::Duration included ("250ms", "1h30m"). Accepted
// spellings: --name=value and --name value; a bool flag is --name or --name=true|false.
// List flags (AddList) may be repeated and keep every value in order. Flags and
// positional arguments may be mixed; a bare "--" ends the flags.
//
// A FlagSet may inherit a parent's flags (cohortctl's global flags): they are accepted
// and listed in Help() too, except where this set defines a flag of the same name,
// which then wins. The bound variables must outlive the FlagSet. Not thread-safe.
class FlagSet {
 public:
  enum class Mode {
    // Every argument is read: flags anywhere, positionals collected.
    kInterspersed,
    // Stop at the first positional argument (cohortctl's global flags, before the
    // command's name).
    kStopAtPositional,
  };

  // `usage` is the synopsis ("cohortctl get [flags] JOB_ID"), `summary` one sentence.
  FlagSet(std::string usage, std::string summary);

  // Binds --name to `*value`; its current value is the default shown by Help() (unless
  // empty, 0 or false). `placeholder` names the value in Help() ("HOST:PORT"); by
  // default it follows the type: N, NUMBER, DURATION or VALUE.
  template <typename T>
  void Add(absl::string_view name, T* value, absl::string_view help, absl::string_view placeholder = {}) {
    AddParser(name, help, placeholder.empty() ? DefaultPlaceholder<T>() : placeholder, absl::UnparseFlag<T>(*value),
              std::is_same_v<T, bool>, [value](absl::string_view text, std::string* error) {
                if (absl::ParseFlag<T>(text, value, error)) return true;
                if (error->empty()) *error = common::ExpectedValue<T>();
                return false;
              });
  }

  // Binds a repeatable --name: each occurrence appends its value to `*values`.
  void AddList(absl::string_view name, std::vector<std::string>* values, absl::string_view help,
               absl::string_view placeholder = "VALUE");

  // Accepts the flags of `parent` too (not owned; must outlive this set).
  void Inherit(FlagSet* parent) { parent_ = parent; }

  // Free-form text appended to Help() (examples, subcommands, exit codes).
  void SetFooter(std::string footer) { footer_ = std::move(footer); }

  // Parses `args` (without the program and command names). INVALID_ARGUMENT with a
  // one-line reason for an unknown flag, a missing value or a malformed one: the flag,
  // the value (QuoteBounded) and why, e.g. `--priority "abc" is invalid: use a whole
  // number from -2147483648 to 2147483647`.
  absl::StatusOr<ParsedArgs> Parse(absl::Span<const std::string> args, Mode mode = Mode::kInterspersed);

  // True if --name was given on the command line (here or in the parent).
  bool IsSet(absl::string_view name) const;

  // Every flag's spelling, "--name", this set's then the inherited ones (for shell
  // completion).
  std::vector<std::string> Names() const;

  // Usage, summary, this set's flags, the inherited ones and the footer.
  std::string Help() const;

 private:
  struct Flag {
    std::string name;
    std::string help;
    std::string placeholder;
    std::string default_value;
    bool is_bool = false;
    bool is_list = false;
    bool set = false;
    std::function<bool(absl::string_view, std::string*)> parse;
  };

  template <typename T>
  static absl::string_view DefaultPlaceholder() {
    if constexpr (std::is_same_v<T, bool>) {
      return "";
    } else if constexpr (std::is_integral_v<T>) {
      return "N";
    } else if constexpr (std::is_floating_point_v<T>) {
      return "NUMBER";
    } else if constexpr (std::is_same_v<T, absl::Duration>) {
      return "DURATION";
    } else {
      return "VALUE";
    }
  }

  void AddParser(absl::string_view name, absl::string_view help, absl::string_view placeholder,
                 std::string default_value, bool is_bool, std::function<bool(absl::string_view, std::string*)> parse);
  Flag* Find(absl::string_view name);
  const Flag* Find(absl::string_view name) const;
  // One line per flag, the descriptions aligned at `column`.
  static void AppendFlagHelp(const Flag& flag, std::size_t column, std::string* out);
  static std::string Spelling(const Flag& flag);

  std::string usage_;
  std::string summary_;
  std::string footer_;
  std::vector<Flag> flags_;
  FlagSet* parent_ = nullptr;
};

// Maps a flag's value to one of a few choices, e.g. --return-when=first-completed.
// INVALID_ARGUMENT naming the flag and listing the choices otherwise.
template <typename E>
absl::StatusOr<E> ParseChoice(absl::string_view flag, absl::string_view value,
                              std::initializer_list<std::pair<absl::string_view, E>> choices) {
  std::vector<absl::string_view> names;
  for (const auto& [name, choice] : choices) {
    if (name == value) return choice;
    names.push_back(name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, " ", common::QuoteBounded(value), " is invalid: use ", absl::StrJoin(names, ", ")));
}

}  // namespace cohort::cli
