#pragma once

#include <string>
#include <string_view>

namespace cohort::testing {

// The absolute path of a binary that Bazel built for this test, given its workspace
// path ("services/broker/cohort-broker", "tests/testing/fake_service"). The test must
// list the target in its `data = [...]`, which puts the binary in the runfiles tree at
// $TEST_SRCDIR/$TEST_WORKSPACE/<path> (Bazel 4; TEST_WORKSPACE defaults to "cohort").
// Aborts with a message naming the path when the environment is not a Bazel test's or
// the file is not an executable there: a missing `data` entry is a build mistake.
std::string BinaryPath(std::string_view workspace_relative);

}  // namespace cohort::testing
