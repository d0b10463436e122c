#include "services/cli/input.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cohort::cli {
namespace {

absl::StatusOr<std::string> ReadAll(std::FILE* file, absl::string_view what) {
  std::string data;
  char buffer[1 << 16];
  while (true) {
    const std::size_t n = std::fread(buffer, 1, sizeof(buffer), file);
    data.append(buffer, n);
    if (data.size() > kMaxInputBytes) {
      return absl::InvalidArgumentError(absl::StrCat(what, " is over ", kMaxInputBytes >> 20, " MiB"));
    }
    if (n < sizeof(buffer)) break;
  }
  if (std::ferror(file)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, ": ", std::strerror(errno)));
  }
  return data;
}

}  // namespace

absl::StatusOr<std::string> ReadPayloadArg(absl::string_view arg) {
  if (arg == "-") return ReadAll(stdin, "stdin");
  if (!absl::StartsWith(arg, "@")) return std::string(arg);
  const std::string path(arg.substr(1));
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", arg, ": ", std::strerror(errno)));
  }
  absl::StatusOr<std::string> data = ReadAll(file, arg);
  std::fclose(file);
  return data;
}

absl::StatusOr<std::vector<std::string>> ReadJobIdArgs(const std::vector<std::string>& args) {
  std::vector<std::string> ids;
  for (const std::string& arg : args) {
    if (arg != "-") {
      ids.push_back(arg);
      continue;
    }
    absl::StatusOr<std::string> text = ReadAll(stdin, "stdin");
    if (!text.ok()) return text.status();
    for (absl::string_view id : absl::StrSplit(*text, absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty())) {
      ids.emplace_back(id);
    }
  }
  if (ids.empty()) return absl::InvalidArgumentError("no job ids given");
  return ids;
}

}  // namespace cohort::cli
