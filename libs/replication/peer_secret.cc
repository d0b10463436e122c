#include "libs/replication/peer_secret.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "openssl/crypto.h"
#include "openssl/evp.h"
#include "openssl/hmac.h"
#include "openssl/rand.h"

namespace cohort::replication {
namespace {

// Larger than any sensible secret: a path to a large file given by mistake is refused
// rather than read.
constexpr std::size_t kMaxPeerSecretBytes = 4096;

}  // namespace

absl::StatusOr<std::string> ReadPeerSecretFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("the replica secret file ", path, " cannot be read: ", std::strerror(errno)));
  }
  std::string secret;
  char buffer[1024];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    secret.append(buffer, static_cast<std::size_t>(in.gcount()));
    if (secret.size() > kMaxPeerSecretBytes + 2) break;
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("the replica secret file ", path, " cannot be read"));
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  if (secret.size() < kMinPeerSecretBytes || secret.size() > kMaxPeerSecretBytes) {
    const std::string size = secret.size() > kMaxPeerSecretBytes ? absl::StrCat("more than ", kMaxPeerSecretBytes)
                                                                 : absl::StrCat(secret.size());
    return absl::InvalidArgumentError(absl::StrCat("the replica secret in ", path, " has ", size, " bytes: use ",
                                                   kMinPeerSecretBytes, " to ", kMaxPeerSecretBytes,
                                                   " (e.g. `openssl rand -base64 48`)"));
  }
  return secret;
}

Sha256Mac HmacSha256(absl::string_view key, std::initializer_list<absl::string_view> parts) {
  std::string message;
  for (absl::string_view part : parts) message.append(part.data(), part.size());
  Sha256Mac mac{};
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
           message.size(), mac.data(), &length) == nullptr ||
      length != mac.size()) {
    std::fprintf(stderr, "cohort: OpenSSL's HMAC-SHA256 failed: peers cannot be authenticated\n");
    std::abort();
  }
  return mac;
}

bool MacEquals(const Sha256Mac& a, const std::uint8_t* b) { return CRYPTO_memcmp(a.data(), b, a.size()) == 0; }

void RandomBytes(std::uint8_t* out, std::size_t size) {
  if (RAND_bytes(out, static_cast<int>(size)) != 1) {
    std::fprintf(stderr, "cohort: OpenSSL's RAND_bytes failed: no nonce can be made safely\n");
    std::abort();
  }
}

}  // namespace cohort::replication
