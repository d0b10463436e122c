#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cohort::cli {

// A client configuration file (docs/config.md): where cohortctl, and the Python and
// Node SDKs, find the server address, TLS and token when no flag or environment
// variable gives them. One setting a line, `key = value`; blank lines and lines whose
// first non-blank character is `#` are ignored; the keys are kClientConfigKeys. The
// file only supplies defaults: a flag beats an environment variable beats the file.
struct ClientConfig {
  // The file it came from ("" when there was none).
  std::string path;
  // key -> value, path values (tls_ca, tls_cert, tls_key, token_file) already made
  // absolute: "~/" is $HOME, a relative path is relative to the file's directory.
  std::map<std::string, std::string> values;

  // The value of `key`, if the file sets it.
  std::optional<std::string> Get(absl::string_view key) const;
};

// The keys a file may set, each the lower-cased name of an environment variable
// without its COHORT_ prefix (server is COHORT_SERVER).
inline constexpr const char* kClientConfigKeys[] = {"server",  "scheduler",       "tls_ca", "tls_cert",
                                                    "tls_key", "tls_server_name", "token",  "token_file"};

// Parses a file's text. INVALID_ARGUMENT "<path>:<line>: <reason>" for the first bad
// line: no `=`, an unknown key (the known ones listed), a key given twice, an empty
// value. `home` expands "~/" in path values.
absl::StatusOr<ClientConfig> ParseClientConfig(absl::string_view text, const std::string& path,
                                               const std::string& home);

// Where the file is: $COHORT_CONFIG if set (and then it must exist), else
// ${XDG_CONFIG_HOME:-$HOME/.config}/cohort/config (which may be missing).
struct ConfigLocation {
  std::string path;
  bool required = false;
};
ConfigLocation FindClientConfig();

// Reads and parses the file FindClientConfig names. A missing optional file is an
// empty config; a missing $COHORT_CONFIG or an unreadable file is NOT_FOUND naming it;
// a file over 64 KiB is INVALID_ARGUMENT.
absl::StatusOr<ClientConfig> LoadClientConfig();

}  // namespace cohort::cli
