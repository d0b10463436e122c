#include "libs/replication/peer_secret.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::replication {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string WriteFile(const std::string& name, const std::string& contents) {
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name;
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

TEST(ReadPeerSecretFile, StripsOneTrailingNewline) {
  const std::string secret(40, 'k');
  EXPECT_EQ(*ReadPeerSecretFile(WriteFile("nl", secret + "\n")), secret);
  EXPECT_EQ(*ReadPeerSecretFile(WriteFile("crlf", secret + "\r\n")), secret);
  EXPECT_EQ(*ReadPeerSecretFile(WriteFile("bare", secret)), secret);
}

TEST(ReadPeerSecretFile, RefusesAShortSecretWithoutQuotingIt) {
  const absl::StatusOr<std::string> read = ReadPeerSecretFile(WriteFile("short", "hunter2-is-not-enough\n"));
  ASSERT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(read.status().message(), HasSubstr("has 21 bytes: use 32 to 4096"));
  EXPECT_THAT(read.status().message(), Not(HasSubstr("hunter2")));
  // A newline does not count towards the length.
  EXPECT_EQ(ReadPeerSecretFile(WriteFile("31", std::string(31, 'k') + "\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadPeerSecretFile, RefusesAMissingOrHugeFile) {
  const absl::StatusOr<std::string> missing = ReadPeerSecretFile("/nonexistent/secret");
  ASSERT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/secret cannot be read"));
  const absl::StatusOr<std::string> huge = ReadPeerSecretFile(WriteFile("huge", std::string(1 << 20, 'k')));
  ASSERT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(huge.status().message(), HasSubstr("more than 4096 bytes"));
}

TEST(HmacSha256, MatchesRfc4231TestCase2) {
  const Sha256Mac mac = HmacSha256("Jefe", {"what do ya want ", "for nothing?"});
  EXPECT_EQ(absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac.data()), mac.size())),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(MacEquals, ComparesEveryByte) {
  const Sha256Mac mac = HmacSha256("key", {"message"});
  Sha256Mac other = mac;
  EXPECT_TRUE(MacEquals(mac, other.data()));
  other[31] ^= 1;
  EXPECT_FALSE(MacEquals(mac, other.data()));
}

}  // namespace
}  // namespace cohort::replication
