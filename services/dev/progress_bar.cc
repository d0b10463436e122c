#include "services/dev/progress_bar.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace cohort::dev {
namespace {

constexpr int kWidth = 30;  // characters inside the brackets
constexpr absl::Duration kRedrawEvery = absl::Milliseconds(50);

}  // namespace

std::string WithCommas(std::int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

ProgressBar::ProgressBar(std::FILE* out, std::string label, std::int64_t total)
    : out_(out),
      terminal_(isatty(fileno(out)) == 1),
      label_(std::move(label)),
      total_(std::max<std::int64_t>(total, 1)),
      start_(absl::Now()) {}

ProgressBar::~ProgressBar() { Finish(); }

void ProgressBar::Advance(std::int64_t n) {
  absl::MutexLock lock(&mu_);
  done_ += n;
  if (finished_) return;
  const absl::Time now = absl::Now();
  if (done_ >= total_ || now - last_draw_ >= kRedrawEvery) {
    last_draw_ = now;
    DrawLocked();
  }
}

void ProgressBar::Finish() {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  if (!terminal_) return;
  DrawLocked();
  std::fputc('\n', out_);
  std::fflush(out_);
}

std::int64_t ProgressBar::done() const {
  absl::MutexLock lock(&mu_);
  return done_;
}

std::string ProgressBar::Render() const {
  absl::MutexLock lock(&mu_);
  return RenderLocked();
}

std::string ProgressBar::RenderLocked() const {
  const std::int64_t done = std::min(done_, total_);
  const int filled = static_cast<int>(done * kWidth / total_);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start_);
  const std::int64_t rate = seconds > 0 ? static_cast<std::int64_t>(static_cast<double>(done_) / seconds) : 0;
  return absl::StrFormat("%s [%s%s] %s/%s  %s jobs/s", label_, std::string(filled, '#'),
                         std::string(kWidth - filled, '-'), WithCommas(done_), WithCommas(total_),
                         WithCommas(rate));
}

void ProgressBar::DrawLocked() {
  if (!terminal_) return;
  // "\033[K" clears what a longer previous line left behind.
  std::fprintf(out_, "\r%s\033[K", RenderLocked().c_str());
  std::fflush(out_);
}

}  // namespace cohort::dev
