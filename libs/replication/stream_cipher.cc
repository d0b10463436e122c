#include "libs/replication/stream_cipher.h"

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "absl/strings/str_cat.h"
#include "openssl/evp.h"
#include "openssl/kdf.h"

namespace cohort::replication {
namespace {

constexpr absl::string_view kConnectorToAcceptor = "cohort-raft-v2 records connector->acceptor";
constexpr absl::string_view kAcceptorToConnector = "cohort-raft-v2 records acceptor->connector";
constexpr std::size_t kIvBytes = 12;

// OpenSSL failing at what cannot fail with valid arguments (allocation, a known cipher):
// going on would send plaintext or unauthenticated bytes, so the process stops.
[[noreturn]] void CryptoFailure(const char* what) {
  std::fprintf(stderr, "cohort: OpenSSL failed (%s): raft streams cannot be encrypted\n", what);
  std::abort();
}

const unsigned char* U8(absl::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

StreamKey Hkdf(absl::string_view secret, absl::string_view salt, absl::string_view info) {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, nullptr),
                                                                  &EVP_PKEY_CTX_free);
  StreamKey key{};
  std::size_t length = key.size();
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) <= 0 ||
      EVP_PKEY_CTX_set_hkdf_md(ctx.get(), EVP_sha256()) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_salt(ctx.get(), U8(salt), static_cast<int>(salt.size())) <= 0 ||
      EVP_PKEY_CTX_set1_hkdf_key(ctx.get(), U8(secret), static_cast<int>(secret.size())) <= 0 ||
      EVP_PKEY_CTX_add1_hkdf_info(ctx.get(), U8(info), static_cast<int>(info.size())) <= 0 ||
      EVP_PKEY_derive(ctx.get(), key.data(), &length) <= 0 || length != key.size()) {
    CryptoFailure("HKDF-SHA256");
  }
  return key;
}

EVP_CIPHER_CTX* NewGcm(const StreamKey& key, bool encrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (ctx == nullptr || EVP_CipherInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr, encrypt ? 1 : 0) != 1) {
    CryptoFailure("AES-256-GCM");
  }
  return ctx;
}

std::array<unsigned char, kIvBytes> Iv(std::uint64_t sequence) {
  std::array<unsigned char, kIvBytes> iv{};
  for (int i = 0; i < 8; ++i) iv[kIvBytes - 1 - i] = static_cast<unsigned char>((sequence >> (8 * i)) & 0xff);
  return iv;
}

}  // namespace

StreamKeys DeriveStreamKeys(absl::string_view secret, absl::string_view acceptor_nonce,
                            absl::string_view connector_nonce, absl::string_view preamble) {
  const std::string salt = absl::StrCat(acceptor_nonce, connector_nonce);
  StreamKeys keys;
  keys.connector_to_acceptor = Hkdf(secret, salt, absl::StrCat(kConnectorToAcceptor, preamble));
  keys.acceptor_to_connector = Hkdf(secret, salt, absl::StrCat(kAcceptorToConnector, preamble));
  return keys;
}

RecordSealer::RecordSealer(const StreamKey& key) : ctx_(NewGcm(key, /*encrypt=*/true)) {}

RecordSealer::~RecordSealer() { EVP_CIPHER_CTX_free(ctx_); }

void RecordSealer::Seal(absl::string_view plaintext, std::string& out) {
  while (!plaintext.empty()) {
    const absl::string_view chunk = plaintext.substr(0, kMaxRecordPlaintext);
    plaintext.remove_prefix(chunk.size());
    const std::size_t start = out.size();
    out.resize(start + kRecordHeaderBytes + chunk.size() + kRecordTagBytes);
    auto* header = reinterpret_cast<unsigned char*>(out.data() + start);
    for (std::size_t i = 0; i < kRecordHeaderBytes; ++i) {
      header[i] = static_cast<unsigned char>((chunk.size() >> (8 * (kRecordHeaderBytes - 1 - i))) & 0xff);
    }
    const std::array<unsigned char, kIvBytes> iv = Iv(sequence_++);
    int length = 0;
    unsigned char* body = header + kRecordHeaderBytes;
    if (EVP_EncryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv.data()) != 1 ||
        EVP_EncryptUpdate(ctx_, nullptr, &length, header, kRecordHeaderBytes) != 1 ||
        EVP_EncryptUpdate(ctx_, body, &length, U8(chunk), static_cast<int>(chunk.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx_, body + length, &length) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_GET_TAG, kRecordTagBytes, body + chunk.size()) != 1) {
      CryptoFailure("sealing a record");
    }
  }
}

RecordOpener::RecordOpener(const StreamKey& key) : ctx_(NewGcm(key, /*encrypt=*/false)) {}

RecordOpener::~RecordOpener() { EVP_CIPHER_CTX_free(ctx_); }

absl::Status RecordOpener::Open(std::string& in, std::string& out) {
  if (failed_) return absl::DataLossError("the stream already failed");
  std::size_t at = 0;
  absl::Status status;
  while (in.size() - at >= kRecordHeaderBytes) {
    const auto* header = reinterpret_cast<const unsigned char*>(in.data() + at);
    std::size_t length = 0;
    for (std::size_t i = 0; i < kRecordHeaderBytes; ++i) length = (length << 8) | header[i];
    if (length == 0 || length > kMaxRecordPlaintext) {
      status = absl::DataLossError(absl::StrCat("a record announced ", length, " bytes, outside [1, ",
                                                kMaxRecordPlaintext, "]"));
      break;
    }
    if (in.size() - at < kRecordHeaderBytes + length + kRecordTagBytes) break;
    const unsigned char* body = header + kRecordHeaderBytes;
    const std::size_t start = out.size();
    out.resize(start + length);
    auto* plain = reinterpret_cast<unsigned char*>(out.data() + start);
    const std::array<unsigned char, kIvBytes> iv = Iv(sequence_);
    int written = 0;
    // The tag is only read by EVP_CTRL_GCM_SET_TAG; OpenSSL's prototype takes void*.
    void* tag = const_cast<unsigned char*>(body + length);
    if (EVP_DecryptInit_ex(ctx_, nullptr, nullptr, nullptr, iv.data()) != 1 ||
        EVP_DecryptUpdate(ctx_, nullptr, &written, header, kRecordHeaderBytes) != 1 ||
        EVP_DecryptUpdate(ctx_, plain, &written, body, static_cast<int>(length)) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_GCM_SET_TAG, kRecordTagBytes, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx_, plain + written, &written) != 1) {
      out.resize(start);
      status = absl::DataLossError(absl::StrCat("record ", sequence_, " does not verify"));
      break;
    }
    ++sequence_;
    at += kRecordHeaderBytes + length + kRecordTagBytes;
  }
  in.erase(0, at);
  if (!status.ok()) failed_ = true;
  return status;
}

}  // namespace cohort::replication
