#include "libs/auth/token_store.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace cohort::auth {
namespace {

std::string TempPath(const std::string& name) { return std::string(std::getenv("TEST_TMPDIR")) + "/" + name; }

TEST(TokenFile, ParsesHashedTokensAndCertificateNames) {
  std::string text = "# comment\n" + TokenFileLine("abc", Principal{"ci", ScopesOf({Scope::kSubmit}), "", {"reports.*"}}) +
                     "\ncn:scheduler.cohort principal=scheduler scopes=read,submit,release  # trailing\n\n";
  absl::StatusOr<TokenTable> table = ParseTokenFile(text);
  ASSERT_TRUE(table.ok()) << table.status();
  ASSERT_EQ(table->by_token_hash.size(), 1u);
  const Principal& ci = table->by_token_hash.at(HashToken("abc"));
  EXPECT_EQ(ci.name, "ci");
  EXPECT_EQ(FormatScopes(ci.scopes), "submit");
  EXPECT_EQ(ci.queue_patterns, std::vector<std::string>{"reports.*"});
  EXPECT_EQ(FormatScopes(table->by_common_name.at("scheduler.cohort").scopes), "submit,read,release");
}

TEST(TokenFile, NeverHoldsAPlainToken) {
  std::string line = TokenFileLine("cohort_secret", Principal{"ci", ScopesOf({Scope::kRead}), "", {}});
  EXPECT_EQ(line.find("cohort_secret"), std::string::npos);
  absl::StatusOr<TokenTable> table = ParseTokenFile("cohort_secret principal=ci scopes=read\n");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.status().message().find("cohort_secret"), std::string::npos);
}

TEST(TokenFile, NamesTheLineOfAnUnknownScope) {
  absl::StatusOr<TokenTable> table = ParseTokenFile("\ncn:x principal=x scopes=read,root\n");
  EXPECT_EQ(table.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(table.status().message().find("line 2"), std::string::npos) << table.status();
  EXPECT_NE(table.status().message().find("\"root\""), std::string::npos) << table.status();
}

TEST(TokenFile, RefusesAnEntryWithoutPrincipalOrScopes) {
  EXPECT_EQ(ParseTokenFile("cn:x scopes=read\n").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseTokenFile("cn:x principal=x\n").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(NewToken, IsLongRandomAndPrefixed) {
  std::string a = NewToken(), b = NewToken();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("cohort_", 0), 0u);
  EXPECT_GE(a.size(), 7u + 43u);
}

TEST(TokenStore, PicksUpARotatedFileWithoutARestart) {
  std::string path = TempPath("rotated");
  std::ofstream(path) << TokenFileLine("old", Principal{"a", ScopesOf({Scope::kRead}), "", {}}) << "\n";
  auto store = TokenStore::Open(path, absl::ZeroDuration());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE((*store)->FindToken("old").has_value());
  // As Kubernetes does: a new file renamed over the old one.
  std::ofstream(path + ".new") << TokenFileLine("new", Principal{"b", ScopesOf({Scope::kRead}), "", {}}) << "\n";
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  EXPECT_FALSE((*store)->FindToken("old").has_value());
  EXPECT_EQ((*store)->FindToken("new")->name, "b");
}

TEST(TokenStore, KeepsThePreviousTokensWhenTheNewFileIsBroken) {
  std::string path = TempPath("broken");
  std::ofstream(path) << TokenFileLine("old", Principal{"a", ScopesOf({Scope::kRead}), "", {}}) << "\n";
  auto store = TokenStore::Open(path, absl::ZeroDuration());
  ASSERT_TRUE(store.ok()) << store.status();
  std::ofstream(path + ".new") << "garbage\n";
  ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
  EXPECT_TRUE((*store)->FindToken("old").has_value());
}

TEST(TokenStore, FailsToOpenAMissingFile) {
  EXPECT_EQ(TokenStore::Open(TempPath("missing")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cohort::auth
