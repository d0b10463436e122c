#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;

namespace cohort::replication {

// The record layer of an authenticated raft stream (raft_dns_transport.h): what one side
// writes after the handshake is a sequence of records, each
//   length (4 bytes, big-endian, 1..kMaxRecordPlaintext) | AES-256-GCM ciphertext | tag (16)
// with the length as additional data and the record's number in its direction (0, 1,
// ...; 64 bits, big-endian, after 4 zero bytes) as the nonce, as TLS 1.3's record layer.
// Each direction of each stream has a key of its own, derived from the group's secret
// and both handshake nonces (fresh on every stream), so a record cannot be replayed into
// another stream or direction, and one removed, reordered or altered fails the next tag.
inline constexpr std::size_t kRecordHeaderBytes = 4;
inline constexpr std::size_t kRecordTagBytes = 16;
inline constexpr std::size_t kMaxRecordPlaintext = 64 << 10;

using StreamKey = std::array<std::uint8_t, 32>;

// The keys of one stream: HKDF-SHA256 with the group's secret as input key material,
// nonceA (the acceptor's) then nonceC (the connector's) as salt, and as info a label per
// direction followed by the libraft preamble the connector sent (so a preamble altered
// on the way yields other keys and the stream's first record fails).
struct StreamKeys {
  StreamKey connector_to_acceptor{};
  StreamKey acceptor_to_connector{};
};
StreamKeys DeriveStreamKeys(absl::string_view secret, absl::string_view acceptor_nonce,
                            absl::string_view connector_nonce, absl::string_view preamble);

// Seals one direction's plaintext into records, numbered from 0. Not thread-safe.
class RecordSealer {
 public:
  explicit RecordSealer(const StreamKey& key);
  ~RecordSealer();
  RecordSealer(const RecordSealer&) = delete;
  RecordSealer& operator=(const RecordSealer&) = delete;

  // Appends the records of `plaintext` (split at kMaxRecordPlaintext; none for empty
  // input) to `out`.
  void Seal(absl::string_view plaintext, std::string& out);

 private:
  EVP_CIPHER_CTX* ctx_;
  std::uint64_t sequence_ = 0;
};

// Opens the records a RecordSealer with the same key sealed, in order. Not thread-safe.
class RecordOpener {
 public:
  explicit RecordOpener(const StreamKey& key);
  ~RecordOpener();
  RecordOpener(const RecordOpener&) = delete;
  RecordOpener& operator=(const RecordOpener&) = delete;

  // Opens every complete record at the front of `in`, appending its plaintext to `out`
  // and removing it from `in`; a partial record stays in `in` for the next call.
  // DATA_LOSS for a length out of range or a tag that does not verify (a record altered,
  // replayed, reordered or sealed under another key): the stream cannot go on.
  absl::Status Open(std::string& in, std::string& out);

 private:
  EVP_CIPHER_CTX* ctx_;
  std::uint64_t sequence_ = 0;
  bool failed_ = false;
};

}  // namespace cohort::replication
