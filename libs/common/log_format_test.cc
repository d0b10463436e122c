#include "libs/common/log_format.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::log {
namespace {

const absl::Time kTime = absl::FromCivil(absl::CivilSecond(2026, 12, 1, 10, 0, 0), absl::UTCTimeZone()) +
                         absl::Microseconds(123'456);

std::string Line(Format format, Level level, std::string_view message, std::vector<Field> fields,
                 std::int64_t suppressed = 0) {
  std::string out;
  AppendLine(format, kTime, level, "executor", RenderBody(format, message, fields, suppressed), out);
  return out;
}

TEST(LogFormat, TextLineHasTimeLevelComponentMessageAndFields) {
  EXPECT_EQ(Line(Format::kText, Level::kInfo, "executor connected",
                 {{"executor_id", "h-1"}, {"attempt", 3}, {"ok", true}}),
            "2026-12-01T10:00:00.123456Z INFO  executor: executor connected executor_id=h-1 attempt=3 ok=true\n");
}

TEST(LogFormat, TimestampIsUtcWithMicroseconds) {
  std::string out;
  AppendLine(Format::kText, absl::FromUnixMicros(1'500'000), Level::kWarn, "c", "m", out);
  EXPECT_EQ(out, "1970-01-01T00:00:01.500000Z WARN  c: m\n");
}

TEST(LogFormat, JsonLineIsOneObjectWithTypedFields) {
  std::string out;
  AppendLine(Format::kJson, absl::FromUnixMicros(1'500'000), Level::kError, "scheduler",
             RenderBody(Format::kJson, "broker unreachable", std::vector<Field>{{"after", absl::Milliseconds(250)},
                                                                                {"attempts", 4},
                                                                                {"ratio", 0.5}}),
             out);
  EXPECT_EQ(out,
            "{\"time\":\"1970-01-01T00:00:01.500000Z\",\"level\":\"error\",\"component\":\"scheduler\","
            "\"msg\":\"broker unreachable\",\"after\":\"250ms\",\"attempts\":4,\"ratio\":0.5}\n");
}

TEST(LogFormat, TextQuotesValuesWithSpacesQuotesOrEquals) {
  EXPECT_EQ(RenderBody(Format::kText, "m", std::vector<Field>{{"a", "two words"}, {"b", "x=y"}, {"c", "say \"hi\""},
                                                              {"d", ""}}),
            "m a=\"two words\" b=\"x=y\" c=\"say \\\"hi\\\"\" d=\"\"");
}

TEST(LogFormat, NewlinesAndControlBytesNeverBreakTheLine) {
  const std::string body = RenderBody(Format::kJson, "line1\nline2", std::vector<Field>{{"e", "a\r\n\x01z"}});
  EXPECT_EQ(body, "\"msg\":\"line1\\nline2\",\"e\":\"a\\r\\n\\u0001z\"");
  const std::string text = RenderBody(Format::kText, "line1\nline2", std::vector<Field>{{"e", "a\nb"}});
  EXPECT_EQ(text.find('\n'), std::string::npos) << text;
}

TEST(LogFormat, InvalidUtf8IsReplacedInJson) {
  EXPECT_EQ(RenderBody(Format::kJson, "m", std::vector<Field>{{"v", "ok \xC3\xA9 bad \xFF end"}}),
            "\"msg\":\"m\",\"v\":\"ok \xC3\xA9 bad \\ufffd end\"");
}

TEST(LogFormat, SecretsAndJobDataAreRedactedWhateverTheCaller) {
  const std::string body =
      RenderBody(Format::kText, "m",
                 std::vector<Field>{{"payload", "SECRET1"}, {"auth_token", "SECRET2"}, {"Authorization", "Bearer x"},
                                    {"result", "SECRET3"}, {"job_id", "j-1"}});
  EXPECT_EQ(body, "m payload=[redacted] auth_token=[redacted] Authorization=[redacted] result=[redacted] job_id=j-1");
}

TEST(LogFormat, LongValuesAreCutAndSaySo) {
  const std::string body = RenderBody(Format::kText, "m", std::vector<Field>{{"error", std::string(10'000, 'x')}});
  EXPECT_LT(body.size(), kMaxFieldValueBytes + 64);
  EXPECT_NE(body.find("(10000 bytes)"), std::string::npos) << body;
}

TEST(LogFormat, SuppressedCountIsAField) {
  EXPECT_EQ(RenderBody(Format::kJson, "m", {}, 41), "\"msg\":\"m\",\"suppressed\":41");
  EXPECT_EQ(RenderBody(Format::kText, "m", {}, 41), "m suppressed=41");
}

TEST(LogFormat, KeysAreMadeSafe) {
  EXPECT_EQ(RenderBody(Format::kText, "m", std::vector<Field>{{"a b=c", "v"}}), "m a_b_c=v");
}

}  // namespace
}  // namespace cohort::log
