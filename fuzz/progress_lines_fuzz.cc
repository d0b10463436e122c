// The progress protocol of exec children (progress_lines.h): the input as one line for
// ParseProgressLine, and as a byte stream fed to ProgressLineSplitter in chunks whose
// sizes the input picks. Every report must have a fraction in [0, 1] and a message no
// longer than a line; the splitter's accepted() must count exactly the lines it reported.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "services/executor/progress_lines.h"

namespace {

void Check(const cohort::executor::ProgressLine& line) {
  if (!(line.fraction >= 0 && line.fraction <= 1)) __builtin_trap();
  if (line.message.size() > cohort::executor::kMaxProgressLineBytes) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string whole(reinterpret_cast<const char*>(data), size);
  if (auto line = cohort::executor::ParseProgressLine(whole)) Check(*line);

  FuzzedDataProvider input(data, size);
  cohort::executor::ProgressLineSplitter splitter;
  int64_t reported = 0;
  auto on_line = [&](cohort::executor::ProgressLine line) {
    Check(line);
    ++reported;
  };
  while (input.remaining_bytes() > 0) {
    const size_t chunk = input.ConsumeIntegralInRange<size_t>(1, 8192);
    splitter.Feed(input.ConsumeBytesAsString(chunk), on_line);
  }
  splitter.Finish(on_line);
  if (reported != splitter.accepted()) __builtin_trap();
  return 0;
}
