#include "services/cli/client_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::cli {
namespace {

using ::testing::HasSubstr;

TEST(ClientConfig, ReadsKeyValueLinesAndSkipsCommentsAndBlankLines) {
  absl::StatusOr<ClientConfig> config = ParseClientConfig(
      "# my cluster\n"
      "\n"
      "server = broker.example:7070\n"
      "  scheduler=sched.example:7071  \n"
      "tls_server_name = cohort\n"
      "token = abc#def\n",
      "/etc/cohort/config", "/home/u");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("server"), "broker.example:7070");
  EXPECT_EQ(config->Get("scheduler"), "sched.example:7071");
  EXPECT_EQ(config->Get("tls_server_name"), "cohort");
  EXPECT_EQ(config->Get("token"), "abc#def");  // '#' only starts a comment at the start of a line
  EXPECT_EQ(config->Get("tls_ca"), std::nullopt);
}

TEST(ClientConfig, PathsAreRelativeToTheFileOrHome) {
  absl::StatusOr<ClientConfig> config = ParseClientConfig(
      "tls_ca = ca.pem\ntls_cert = ~/certs/me.pem\ntls_key = /abs/me.key\ntoken_file = ../token\n",
      "/etc/cohort/config", "/home/u");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("tls_ca"), "/etc/cohort/ca.pem");
  EXPECT_EQ(config->Get("tls_cert"), "/home/u/certs/me.pem");
  EXPECT_EQ(config->Get("tls_key"), "/abs/me.key");
  EXPECT_EQ(config->Get("token_file"), "/etc/token");
}

TEST(ClientConfig, AnUnknownKeyIsAnErrorNamingFileAndLine) {
  absl::StatusOr<ClientConfig> config = ParseClientConfig("server = a:1\n\nsrever = b:2\n", "/c/config", "");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("/c/config:3: unknown key \"srever\": use server, scheduler"));
}

TEST(ClientConfig, ALineWithoutEqualsIsAnErrorQuotingABoundedPrefix) {
  absl::StatusOr<ClientConfig> config = ParseClientConfig("server\n" + std::string(10'000, 'x'), "/c/config", "");
  ASSERT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("/c/config:1: expected `key = value`, got \"server\""));
  absl::StatusOr<ClientConfig> long_line = ParseClientConfig(std::string(10'000, 'x'), "/c/config", "");
  ASSERT_EQ(long_line.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(long_line.status().message().size(), 400u);
}

TEST(ClientConfig, AKeyTwiceOrAnEmptyValueIsAnError) {
  absl::StatusOr<ClientConfig> twice = ParseClientConfig("server = a:1\nserver = b:2\n", "/c/config", "");
  ASSERT_EQ(twice.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(twice.status().message(), HasSubstr("/c/config:2: \"server\" is set twice (first on line 1)"));
  absl::StatusOr<ClientConfig> empty = ParseClientConfig("token =\n", "/c/config", "");
  ASSERT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("/c/config:1: \"token\" has no value"));
}

}  // namespace
}  // namespace cohort::cli
