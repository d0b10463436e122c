#include "services/cli/client_config.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/common/quote.h"

namespace cohort::cli {
namespace {

constexpr std::size_t kMaxConfigBytes = 64 * 1024;

bool IsKnownKey(absl::string_view key) {
  for (const char* known : kClientConfigKeys) {
    if (key == known) return true;
  }
  return false;
}

bool IsPathKey(absl::string_view key) {
  return key == "tls_ca" || key == "tls_cert" || key == "tls_key" || key == "token_file";
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

std::string ResolvePath(const std::string& value, const std::string& config_path, const std::string& home) {
  if (absl::StartsWith(value, "~/") && !home.empty()) return (std::filesystem::path(home) / value.substr(2)).string();
  std::filesystem::path p(value);
  if (p.is_absolute()) return value;
  return (std::filesystem::path(config_path).parent_path() / p).lexically_normal().string();
}

}  // namespace

std::optional<std::string> ClientConfig::Get(absl::string_view key) const {
  auto it = values.find(std::string(key));
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<ClientConfig> ParseClientConfig(absl::string_view text, const std::string& path,
                                               const std::string& home) {
  ClientConfig config;
  config.path = path;
  std::map<std::string, std::size_t> first_line;
  std::size_t number = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++number;
    auto error = [&](absl::string_view reason) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", number, ": ", reason));
    };
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    const std::size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return error(absl::StrCat("expected `key = value`, got ", common::QuoteBounded(line)));
    }
    const std::string key(absl::StripAsciiWhitespace(line.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (!IsKnownKey(key)) {
      return error(absl::StrCat("unknown key ", common::QuoteBounded(key), ": use ",
                                absl::StrJoin(kClientConfigKeys, ", ")));
    }
    if (auto [it, inserted] = first_line.emplace(key, number); !inserted) {
      return error(absl::StrCat("\"", key, "\" is set twice (first on line ", it->second, ")"));
    }
    if (value.empty()) return error(absl::StrCat("\"", key, "\" has no value"));
    config.values[key] = IsPathKey(key) ? ResolvePath(value, path, home) : value;
  }
  return config;
}

ConfigLocation FindClientConfig() {
  if (std::string explicit_path = Env("COHORT_CONFIG"); !explicit_path.empty()) return {explicit_path, true};
  std::string base = Env("XDG_CONFIG_HOME");
  if (base.empty()) {
    const std::string home = Env("HOME");
    if (home.empty()) return {"", false};
    base = (std::filesystem::path(home) / ".config").string();
  }
  return {(std::filesystem::path(base) / "cohort" / "config").string(), false};
}

absl::StatusOr<ClientConfig> LoadClientConfig() {
  const ConfigLocation where = FindClientConfig();
  if (where.path.empty()) return ClientConfig{};
  std::ifstream in(where.path, std::ios::binary);
  if (!in) {
    if (!where.required && errno == ENOENT) return ClientConfig{};
    return absl::NotFoundError(absl::StrCat("config file ", where.path, " cannot be read: ", std::strerror(errno),
                                            where.required ? " (named by COHORT_CONFIG)" : ""));
  }
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("config file ", where.path, " is over ", kMaxConfigBytes / 1024, " KiB: is it the right file?"));
  }
  return ParseClientConfig(text, where.path, Env("HOME"));
}

}  // namespace cohort::cli
