#include "libs/auth/token_store.h"

#include <sys/stat.h>

#include <array>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "libs/common/log.h"
#include "libs/common/quote.h"
#include "openssl/evp.h"
#include "openssl/rand.h"

namespace cohort::auth {
namespace {

const log::Logger kLog("auth");

bool ValidPrincipalName(absl::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '@' && c != ':' && c != '-') return false;
  }
  return true;
}

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(c) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("token file line ", line, ": ", what));
}

}  // namespace

absl::StatusOr<TokenTable> ParseTokenFile(absl::string_view text) {
  TokenTable table;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (std::size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    Principal principal;
    bool has_scopes = false;
    for (std::size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
      if (kv.first == "principal") {
        if (!ValidPrincipalName(kv.second)) {
          return LineError(number, "principal must match [A-Za-z0-9._@:-]{1,128}");
        }
        principal.name = std::string(kv.second);
      } else if (kv.first == "scopes") {
        absl::StatusOr<ScopeSet> scopes = ParseScopes(kv.second);
        if (!scopes.ok()) return LineError(number, scopes.status().message());
        principal.scopes = *scopes;
        has_scopes = true;
      } else if (kv.first == "executor") {
        principal.executor_pattern = std::string(kv.second);
      } else if (kv.first == "queues") {
        for (absl::string_view q : absl::StrSplit(kv.second, ',', absl::SkipEmpty())) {
          principal.queue_patterns.emplace_back(q);
        }
      } else {
        return LineError(number, absl::StrCat("unknown field ", common::QuoteBounded(kv.first),
                                              ": use principal=, scopes=, executor=, queues="));
      }
    }
    if (principal.name.empty()) return LineError(number, "principal= is missing");
    if (!has_scopes) return LineError(number, "scopes= is missing");
    absl::string_view key = fields[0];
    if (absl::ConsumePrefix(&key, "sha256:")) {
      if (key.size() != 64 || !IsLowerHex(key)) {
        return LineError(number, "a token hash is sha256: and 64 lower-case hex digits");
      }
      if (!table.by_token_hash.emplace(std::string(key), principal).second) {
        return LineError(number, "the same token hash appears twice");
      }
    } else if (absl::ConsumePrefix(&key, "cn:")) {
      if (key.empty()) return LineError(number, "cn: needs a certificate common name");
      if (!table.by_common_name.emplace(std::string(key), principal).second) {
        return LineError(number, "the same common name appears twice");
      }
    } else {
      return LineError(number, "an entry starts with sha256:<hash> or cn:<common name> (never a plain token)");
    }
  }
  return table;
}

std::string TokenFileLine(absl::string_view token, const Principal& principal) {
  std::string line = absl::StrCat("sha256:", HashToken(token), " principal=", principal.name,
                                  " scopes=", FormatScopes(principal.scopes));
  if (!principal.executor_pattern.empty()) absl::StrAppend(&line, " executor=", principal.executor_pattern);
  if (!principal.queue_patterns.empty()) absl::StrAppend(&line, " queues=", absl::StrJoin(principal.queue_patterns, ","));
  return line;
}

std::string HashToken(absl::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) {
    // Only on a broken libcrypto; a hash nobody can match refuses the token.
    return "";
  }
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

std::string NewToken() {
  std::array<unsigned char, 32> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    std::fprintf(stderr, "cohort: OpenSSL's RAND_bytes failed: no token can be made safely\n");
    std::abort();
  }
  return absl::StrCat("cohort_",
                      absl::WebSafeBase64Escape(absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size())));
}

absl::StatusOr<std::shared_ptr<TokenStore>> TokenStore::Open(std::string path, absl::Duration recheck) {
  std::shared_ptr<TokenStore> store(new TokenStore(std::move(path), recheck));
  absl::MutexLock lock(&store->mu_);
  if (absl::Status s = store->Load(); !s.ok()) return s;
  store->last_check_ = absl::Now();
  return store;
}

absl::Status TokenStore::Load() {
  struct stat st{};
  if (::stat(path_.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat("token file ", path_, " cannot be read"));
  }
  std::ifstream in(path_, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("token file ", path_, " cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<TokenTable> table = ParseTokenFile(text.str());
  FileStamp stamp{st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                  static_cast<std::uint64_t>(st.st_ino)};
  stamp_ = stamp;  // a bad file is reported once, not on every lookup
  if (!table.ok()) return absl::InvalidArgumentError(absl::StrCat(path_, ": ", table.status().message()));
  table_ = *std::move(table);
  return absl::OkStatus();
}

void TokenStore::MaybeReload() {
  absl::Time now = absl::Now();
  if (now - last_check_ < recheck_) return;
  last_check_ = now;
  struct stat st{};
  if (::stat(path_.c_str(), &st) != 0) return;  // mid-rotation: keep what we have
  FileStamp stamp{st.st_size, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                  static_cast<std::uint64_t>(st.st_ino)};
  if (stamp == stamp_) return;
  if (absl::Status s = Load(); !s.ok()) {
    kLog.Warn("token file changed but does not load; keeping the previous tokens", {{"error", s.ToString()}});
  } else {
    kLog.Info("token file reloaded", {{"path", path_}});
  }
}

std::optional<Principal> TokenStore::FindToken(absl::string_view token) {
  std::string hash = HashToken(token);
  absl::MutexLock lock(&mu_);
  MaybeReload();
  auto it = table_.by_token_hash.find(hash);
  if (it == table_.by_token_hash.end()) return std::nullopt;
  return it->second;
}

std::optional<Principal> TokenStore::FindCommonName(absl::string_view common_name) {
  absl::MutexLock lock(&mu_);
  MaybeReload();
  auto it = table_.by_common_name.find(common_name);
  if (it == table_.by_common_name.end()) return std::nullopt;
  return it->second;
}

}  // namespace cohort::auth
