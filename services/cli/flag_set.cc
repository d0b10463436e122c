#include "services/cli/flag_set.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"

namespace cohort::cli {

FlagSet::FlagSet(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}

void FlagSet::AddParser(absl::string_view name, absl::string_view help, absl::string_view placeholder,
                        std::string default_value, bool is_bool,
                        std::function<bool(absl::string_view, std::string*)> parse) {
  Flag flag;
  flag.name = std::string(name);
  flag.help = std::string(help);
  flag.placeholder = std::string(placeholder);
  flag.default_value = std::move(default_value);
  flag.is_bool = is_bool;
  flag.parse = std::move(parse);
  flags_.push_back(std::move(flag));
}

void FlagSet::AddList(absl::string_view name, std::vector<std::string>* values, absl::string_view help,
                      absl::string_view placeholder) {
  AddParser(name, help, placeholder, "", false, [values](absl::string_view text, std::string*) {
    values->emplace_back(text);
    return true;
  });
  flags_.back().is_list = true;
}

FlagSet::Flag* FlagSet::Find(absl::string_view name) {
  for (Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return parent_ == nullptr ? nullptr : parent_->Find(name);
}

const FlagSet::Flag* FlagSet::Find(absl::string_view name) const {
  for (const Flag& f : flags_) {
    if (f.name == name) return &f;
  }
  return parent_ == nullptr ? nullptr : static_cast<const FlagSet*>(parent_)->Find(name);
}

bool FlagSet::IsSet(absl::string_view name) const {
  const Flag* flag = Find(name);
  return flag != nullptr && flag->set;
}

absl::StatusOr<ParsedArgs> FlagSet::Parse(absl::Span<const std::string> args, Mode mode) {
  ParsedArgs parsed;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") {
      parsed.after_dashes.assign(args.begin() + i + 1, args.end());
      i = args.size();
      break;
    }
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
      continue;
    }
    // A lone "-" (stdin) and anything without a leading "--" is positional.
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      if (mode == Mode::kStopAtPositional) break;
      parsed.positional.emplace_back(arg);
      continue;
    }
    absl::string_view body = arg.substr(2);
    absl::string_view name = body;
    absl::string_view value;
    bool has_value = false;
    if (std::size_t eq = body.find('='); eq != absl::string_view::npos) {
      name = body.substr(0, eq);
      value = body.substr(eq + 1);
      has_value = true;
    }
    Flag* flag = Find(name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name.substr(0, common::kQuotePrefixBytes), " (see --help)"));
    }
    if (!has_value) {
      if (flag->is_bool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat("flag --", name, " needs a value"));
      }
    }
    std::string error;
    if (!flag->parse(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " ", common::QuoteBounded(value), " is invalid: ", error));
    }
    flag->set = true;
  }
  parsed.consumed = i;
  return parsed;
}

std::vector<std::string> FlagSet::Names() const {
  std::vector<std::string> names;
  for (const Flag& f : flags_) names.push_back(absl::StrCat("--", f.name));
  if (parent_ != nullptr) {
    for (std::string& name : parent_->Names()) {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    }
  }
  names.push_back("--help");
  return names;
}

std::string FlagSet::Spelling(const Flag& flag) {
  return flag.is_bool ? absl::StrCat("--", flag.name) : absl::StrCat("--", flag.name, "=", flag.placeholder);
}

void FlagSet::AppendFlagHelp(const Flag& flag, std::size_t column, std::string* out) {
  std::string line = absl::StrFormat("  %-*s  %s", static_cast<int>(column), Spelling(flag), flag.help);
  if (flag.is_list) {
    absl::StrAppend(&line, " (repeatable)");
  } else if (!flag.default_value.empty() && flag.default_value != "0" && flag.default_value != "false") {
    absl::StrAppend(&line, " (default ", flag.default_value, ")");
  }
  absl::StrAppend(out, line, "\n");
}

std::string FlagSet::Help() const {
  std::vector<const Flag*> inherited;
  if (parent_ != nullptr) {
    for (const Flag& f : parent_->flags_) {
      bool shadowed = false;
      for (const Flag& own : flags_) shadowed = shadowed || own.name == f.name;
      if (!shadowed) inherited.push_back(&f);
    }
  }
  std::size_t column = 0;
  for (const Flag& f : flags_) column = std::max(column, Spelling(f).size());
  for (const Flag* f : inherited) column = std::max(column, Spelling(*f).size());

  std::string out = absl::StrCat("usage: ", usage_, "\n\n", summary_, "\n");
  if (!flags_.empty()) {
    absl::StrAppend(&out, "\nflags:\n");
    for (const Flag& f : flags_) AppendFlagHelp(f, column, &out);
  }
  if (!inherited.empty()) {
    absl::StrAppend(&out, "\nglobal flags:\n");
    for (const Flag* f : inherited) AppendFlagHelp(*f, column, &out);
  }
  if (!footer_.empty()) absl::StrAppend(&out, "\n", footer_);
  return out;
}

}  // namespace cohort::cli
