#include "libs/replication/stream_cipher.h"

#include <string>

#include "gtest/gtest.h"

namespace cohort::replication {
namespace {

const std::string kSecret(32, 's');
const std::string kNonceA(32, 'a');
const std::string kNonceC(32, 'c');
const std::string kPreamble = "preamble of the connector";

TEST(StreamCipherTest, RecordsOpenInOrderWhateverHowTheBytesArriveAndHideThePlaintext) {
  const StreamKeys keys = DeriveStreamKeys(kSecret, kNonceA, kNonceC, kPreamble);
  RecordSealer sealer(keys.connector_to_acceptor);
  const std::string first = "raft append entries: job payload 12345";
  const std::string big(kMaxRecordPlaintext + 100, 'x');  // two records
  std::string wire;
  sealer.Seal(first, wire);
  sealer.Seal("", wire);  // nothing
  sealer.Seal(big, wire);
  EXPECT_EQ(wire.size(), first.size() + big.size() + 3 * (kRecordHeaderBytes + kRecordTagBytes));
  EXPECT_EQ(wire.find("payload"), std::string::npos) << "the plaintext shows on the wire";

  RecordOpener opener(keys.connector_to_acceptor);
  std::string in;
  std::string out;
  for (char byte : wire) {  // one byte at a time: partial records wait for the rest
    in.push_back(byte);
    ASSERT_TRUE(opener.Open(in, out).ok());
  }
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(out, first + big);
}

TEST(StreamCipherTest, EachDirectionStreamAndPreambleHasItsOwnKeys) {
  const StreamKeys keys = DeriveStreamKeys(kSecret, kNonceA, kNonceC, kPreamble);
  EXPECT_NE(keys.connector_to_acceptor, keys.acceptor_to_connector);
  EXPECT_NE(keys.connector_to_acceptor, DeriveStreamKeys(kSecret, kNonceA, std::string(32, 'd'), kPreamble).connector_to_acceptor);
  EXPECT_NE(keys.connector_to_acceptor, DeriveStreamKeys(kSecret, std::string(32, 'b'), kNonceC, kPreamble).connector_to_acceptor);
  EXPECT_NE(keys.connector_to_acceptor, DeriveStreamKeys(kSecret, kNonceA, kNonceC, "another id").connector_to_acceptor);
  EXPECT_NE(keys.connector_to_acceptor,
            DeriveStreamKeys(std::string(32, 't'), kNonceA, kNonceC, kPreamble).connector_to_acceptor);
  EXPECT_EQ(keys.connector_to_acceptor, DeriveStreamKeys(kSecret, kNonceA, kNonceC, kPreamble).connector_to_acceptor);
}

// What a man in the middle can do to a stream: flip a bit, replay, reorder, drop a
// record, or send one sealed under another key. None yields plaintext: each is refused,
// or (a length enlarged) waits for bytes that, once they come, fail the tag; a refused
// stream stays refused.
TEST(StreamCipherTest, AlteredReplayedReorderedDroppedOrForeignRecordsAreRefused) {
  const StreamKeys keys = DeriveStreamKeys(kSecret, kNonceA, kNonceC, kPreamble);
  std::string one;
  std::string two;
  {
    RecordSealer sealer(keys.connector_to_acceptor);
    sealer.Seal("first", one);
    sealer.Seal("second", two);
  }
  // Whether every record of `wire` opened.
  auto opens = [&](std::string wire) {
    RecordOpener opener(keys.connector_to_acceptor);
    std::string out;
    return opener.Open(wire, out).ok() && wire.empty();
  };
  EXPECT_TRUE(opens(one + two));
  for (std::size_t i = 0; i < one.size(); ++i) {
    std::string flipped = one;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    EXPECT_FALSE(opens(flipped + two)) << "a bit flipped in byte " << i;
  }
  EXPECT_FALSE(opens(one + one)) << "replayed";
  EXPECT_FALSE(opens(two + one)) << "reordered";
  EXPECT_FALSE(opens(two)) << "the first dropped";
  std::string reverse;
  RecordSealer(keys.acceptor_to_connector).Seal("first", reverse);
  EXPECT_FALSE(opens(reverse)) << "the other direction's";

  RecordOpener opener(keys.connector_to_acceptor);
  std::string out;
  std::string wire = one;
  wire[0] = static_cast<char>(0x7f);  // a length beyond kMaxRecordPlaintext
  const absl::Status refused = opener.Open(wire, out);
  EXPECT_EQ(refused.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(refused.message().find("outside"), std::string::npos) << refused;
  std::string good = one;
  EXPECT_FALSE(opener.Open(good, out).ok()) << "a failed stream stays failed";
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace cohort::replication
