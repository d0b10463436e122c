#include "services/executor/allowlist.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::executor {
namespace {

CommandAllowlist Make(std::vector<std::string> patterns) {
  absl::StatusOr<CommandAllowlist> allowlist = CommandAllowlist::Create(std::move(patterns));
  EXPECT_TRUE(allowlist.ok()) << allowlist.status();
  return *std::move(allowlist);
}

TEST(CommandAllowlist, DefaultAllowsNothing) {
  absl::Status s = CommandAllowlist().Check({"/bin/true"});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(),
            "command \"/bin/true\" is not allowed by this executor: allowed are none (no exec allowlist is configured)");
}

TEST(CommandAllowlist, AllowsAnExactPath) {
  CommandAllowlist allowlist = Make({"/bin/echo"});
  EXPECT_TRUE(allowlist.Check({"/bin/echo", "hi"}).ok());
  EXPECT_EQ(allowlist.Check({"/bin/echo2"}).code(), absl::StatusCode::kPermissionDenied);
}

TEST(CommandAllowlist, DeniesOthersNamingTheCommandAndThePatterns) {
  absl::Status s = Make({"/usr/bin/*", "/bin/echo"}).Check({"/bin/rm", "-rf", "/"});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "command \"/bin/rm\" is not allowed by this executor: allowed are \"/usr/bin/*\", \"/bin/echo\"");
}

TEST(CommandAllowlist, GlobMatchesOneDirectoryLevelOnly) {
  CommandAllowlist allowlist = Make({"/usr/bin/*"});
  EXPECT_TRUE(allowlist.Check({"/usr/bin/env"}).ok());
  EXPECT_EQ(allowlist.Check({"/usr/bin/sub/tool"}).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(allowlist.Check({"/usr/bin/.hidden"}).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(allowlist.Check({"/usr/binx"}).code(), absl::StatusCode::kPermissionDenied);
}

TEST(CommandAllowlist, GlobSupportsCharacterClasses) {
  CommandAllowlist allowlist = Make({"/opt/tools/tool-[0-9]*"});
  EXPECT_TRUE(allowlist.Check({"/opt/tools/tool-2"}).ok());
  EXPECT_EQ(allowlist.Check({"/opt/tools/tool-x"}).code(), absl::StatusCode::kPermissionDenied);
}

TEST(CommandAllowlist, RejectsAnEmptyArgv) {
  EXPECT_EQ(Make({"/bin/*"}).Check({}).code(), absl::StatusCode::kInvalidArgument);
}

TEST(CommandAllowlist, RejectsRelativeAndUnnormalizedPrograms) {
  CommandAllowlist allowlist = Make({"/opt/*/bin/tool", "/bin/*"});
  for (const char* program : {"rm", "bin/rm", "", "/", "/opt/../bin/tool", "/bin/./rm", "/bin//rm", "/bin/.."}) {
    absl::Status s = allowlist.Check({program});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << program << ": " << s;
  }
  EXPECT_TRUE(allowlist.Check({"/opt/x/bin/tool"}).ok());
}

TEST(CommandAllowlist, CreateRejectsRelativeOrEmptyPatterns) {
  EXPECT_EQ(CommandAllowlist::Create({"bin/*"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CommandAllowlist::Create({""}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(CommandAllowlist::Create({}).ok());
}

}  // namespace
}  // namespace cohort::executor
