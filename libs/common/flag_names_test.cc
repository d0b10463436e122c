#include "libs/common/flag_names.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cohort::common {
namespace {

std::vector<std::string> Rewrite(std::vector<std::string> in) {
  std::vector<char*> argv;
  for (std::string& s : in) argv.push_back(s.data());
  DashedArgs args(static_cast<int>(argv.size()), argv.data());
  return std::vector<std::string>(args.argv(), args.argv() + args.argc());
}

TEST(DashedArgs, RewritesFlagNamesButNotValuesOrPositionals) {
  EXPECT_EQ(Rewrite({"cohort-broker", "--data-dir=/tmp/a-b", "--metrics-listen", "127.0.0.1:0", "-v",
                     "--", "--not-a-flag"}),
            (std::vector<std::string>{"cohort-broker", "--data_dir=/tmp/a-b", "--metrics_listen", "127.0.0.1:0", "-v",
                                      "--", "--not-a-flag"}));
}

}  // namespace
}  // namespace cohort::common
