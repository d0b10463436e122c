#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/auth/principal.h"

namespace cohort::auth {

// The credentials a server accepts, parsed from a token file. The file never holds a
// token, only its SHA-256; one entry per line, `#` starts a comment:
//
//   sha256:<64 hex digits> principal=ci-bot scopes=submit,read queues=reports.*
//   sha256:<64 hex digits> principal=exec-a scopes=execute executor=worker-a-*
//   cn:scheduler.cohort.svc principal=scheduler scopes=read,submit,release
//
// `cn:` entries grant a verified mTLS client certificate with that subject common name.
struct TokenTable {
  absl::flat_hash_map<std::string, Principal> by_token_hash;  // lower-case hex SHA-256
  absl::flat_hash_map<std::string, Principal> by_common_name;
};

// Parses a token file's text. Errors are INVALID_ARGUMENT naming the line number and
// what is wrong with it; they never quote a hash.
absl::StatusOr<TokenTable> ParseTokenFile(absl::string_view text);

// One line for a token file granting `principal` (the token is hashed here).
std::string TokenFileLine(absl::string_view token, const Principal& principal);

// Lower-case hex SHA-256 of `token` (OpenSSL's libcrypto).
std::string HashToken(absl::string_view token);

// A fresh token: "cohort_" and 43 characters of base64url over 32 random bytes
// (OpenSSL's RAND_bytes).
std::string NewToken();

// A token file, re-read when it changes (Kubernetes rotates Secrets in place): at most
// once per `recheck` a lookup stats the file and reloads it if its size, mtime or inode
// moved. A file that no longer parses keeps the previous table (and says so on stderr
// once per change). Thread-safe; lookups take one mutex.
class TokenStore {
 public:
  // Reads `path` now: a missing or malformed file fails the start (NOT_FOUND /
  // INVALID_ARGUMENT, naming the path).
  static absl::StatusOr<std::shared_ptr<TokenStore>> Open(std::string path,
                                                          absl::Duration recheck = absl::Seconds(1));

  std::optional<Principal> FindToken(absl::string_view token);
  std::optional<Principal> FindCommonName(absl::string_view common_name);

 private:
  struct FileStamp {
    std::int64_t size = -1, mtime_ns = -1;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  TokenStore(std::string path, absl::Duration recheck) : path_(std::move(path)), recheck_(recheck) {}
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeReload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const absl::Duration recheck_;
  absl::Mutex mu_;
  TokenTable table_ ABSL_GUARDED_BY(mu_);
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  absl::Time last_check_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace cohort::auth
