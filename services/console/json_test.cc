#include "services/console/json.h"

#include <string>

#include "gtest/gtest.h"

namespace cohort::console {
namespace {

TEST(JsonString, EscapesQuotesControlsAndAngleBrackets) {
  EXPECT_EQ(JsonString("a\"b\\c\n\x01<"), "\"a\\\"b\\\\c\\n\\u0001\\u003c\"");
}

TEST(JsonString, ReplacesInvalidUtf8SoTheOutputIsAlwaysJson) {
  EXPECT_EQ(JsonString("ok\xff\xc3"), "\"ok\\ufffd\\ufffd\"");
  EXPECT_EQ(JsonString("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

TEST(ErrorReply, CutsTheMessageToItsBound) {
  HttpReply reply = ErrorReply(400, std::string(100'000, 'x'));
  EXPECT_EQ(reply.status, 400);
  EXPECT_LT(reply.body.size(), kMaxErrorMessageBytes + 32);
}

TEST(BytesPreviewJson, ShowsTextAsText) {
  EXPECT_EQ(BytesPreviewJson("hello\n"),
            "{\"size\":6,\"encoding\":\"text\",\"data\":\"hello\\n\",\"truncated\":false}");
}

TEST(BytesPreviewJson, ShowsBinaryAsHex) {
  EXPECT_EQ(BytesPreviewJson(std::string("\x00\xff", 2)),
            "{\"size\":2,\"encoding\":\"hex\",\"data\":\"00 ff\",\"truncated\":false}");
}

TEST(BytesPreviewJson, TruncatesLargeTextAtACharacterBoundary) {
  // 3 two-byte characters cut at 5 bytes keep 2 characters, never half of one.
  EXPECT_EQ(BytesPreviewJson("\xc3\xa9\xc3\xa9\xc3\xa9", 5, 4),
            "{\"size\":6,\"encoding\":\"text\",\"data\":\"\xc3\xa9\xc3\xa9\",\"truncated\":true}");
  EXPECT_EQ(BytesPreviewJson(std::string(10, '\0'), 5, 3),
            "{\"size\":10,\"encoding\":\"hex\",\"data\":\"00 00 00\",\"truncated\":true}");
}

}  // namespace
}  // namespace cohort::console
