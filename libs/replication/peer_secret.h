#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cohort::replication {

// The shorter a shared secret, the easier to guess: a group's secret has at least this
// many bytes (32 random bytes: as many as the HMAC-SHA256 key it becomes).
inline constexpr std::size_t kMinPeerSecretBytes = 32;

// The secret every member of a replicated group shares (as RabbitMQ's Erlang cookie):
// the bytes of the file at `path`, one trailing newline ("\n" or "\r\n") stripped.
// INVALID_ARGUMENT (naming the path, never quoting the contents) when the file cannot
// be read, holds fewer than kMinPeerSecretBytes bytes or more than 4096.
absl::StatusOr<std::string> ReadPeerSecretFile(const std::string& path);

using Sha256Mac = std::array<std::uint8_t, 32>;

// HMAC-SHA256 (OpenSSL) under `key` of the concatenation of `parts`.
Sha256Mac HmacSha256(absl::string_view key, std::initializer_list<absl::string_view> parts);

// Whether `a` and `b` are equal, in time independent of where they differ
// (CRYPTO_memcmp): for comparing a MAC a peer sent with the one expected.
bool MacEquals(const Sha256Mac& a, const std::uint8_t* b);

// Fills `out` with cryptographically strong random bytes (RAND_bytes). OpenSSL's
// generator failing is fatal: a predictable nonce would void the authentication, so the
// process aborts with a message rather than go on.
void RandomBytes(std::uint8_t* out, std::size_t size);

}  // namespace cohort::replication
