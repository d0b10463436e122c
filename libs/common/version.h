#pragma once

namespace cohort::common {

// Cohort's release, the one place it is written: every binary's --version prints it
// (VersionLine), and the chart's appVersion and the SDKs' package versions follow it.
inline constexpr char kCohortVersion[] = "0.1.0";

}  // namespace cohort::common
