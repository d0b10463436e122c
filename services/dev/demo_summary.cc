#include "services/dev/demo_summary.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/dev/progress_bar.h"

namespace cohort::dev {

absl::Duration Percentile(std::vector<absl::Duration> samples, double q) {
  if (samples.empty()) return absl::ZeroDuration();
  q = std::clamp(q, 0.0, 1.0);
  // Nearest rank: the smallest sample with at least q of the samples at or below it.
  std::size_t rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size())));
  rank = std::clamp<std::size_t>(rank, 1, samples.size());
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(rank - 1), samples.end());
  return samples[rank - 1];
}

std::string FormatLatency(absl::Duration d) {
  if (d < absl::Seconds(1)) return absl::StrFormat("%.1f ms", absl::ToDoubleMilliseconds(d));
  return absl::StrFormat("%.2f s", absl::ToDoubleSeconds(d));
}

std::string FormatSummary(const DemoSummary& summary) {
  std::string out = "  jobs by state   ";
  for (const auto& [state, count] : summary.by_state) {
    std::string name = cohort::v1::JobState_Name(state);
    constexpr absl::string_view kPrefix = "JOB_STATE_";
    if (absl::string_view(name).substr(0, kPrefix.size()) == kPrefix) name = name.substr(kPrefix.size());
    absl::StrAppend(&out, " ", name, " ", WithCommas(count), "  ");
  }
  out += "\n";
  const double seconds = absl::ToDoubleSeconds(summary.fan_out_elapsed);
  if (summary.fan_out_jobs > 0 && seconds > 0) {
    absl::StrAppendFormat(&out, "  throughput       %s jobs/s (%s fan-out jobs, first submit to last done in %.2f s)\n",
                          WithCommas(static_cast<std::int64_t>(static_cast<double>(summary.fan_out_jobs) / seconds)),
                          WithCommas(summary.fan_out_jobs), seconds);
  }
  if (summary.latency_by_priority.empty()) return out;
  absl::StrAppendFormat(&out, "\n  %8s  %7s  %17s  %10s\n", "priority", "jobs", "submit→done p50", "p99");
  std::vector<absl::Duration> all;
  // Highest priority first, as the broker dispatches them.
  for (auto it = summary.latency_by_priority.rbegin(); it != summary.latency_by_priority.rend(); ++it) {
    const std::vector<absl::Duration>& samples = it->second;
    all.insert(all.end(), samples.begin(), samples.end());
    absl::StrAppendFormat(&out, "  %8d  %7s  %15s  %10s\n", it->first,
                          WithCommas(static_cast<std::int64_t>(samples.size())),
                          FormatLatency(Percentile(samples, 0.5)), FormatLatency(Percentile(samples, 0.99)));
  }
  absl::StrAppendFormat(&out, "  %8s  %7s  %15s  %10s\n", "all", WithCommas(static_cast<std::int64_t>(all.size())),
                        FormatLatency(Percentile(all, 0.5)), FormatLatency(Percentile(all, 0.99)));
  return out;
}

}  // namespace cohort::dev
