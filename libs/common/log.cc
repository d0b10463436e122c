#include "libs/common/log.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "libs/common/log_rate_limit.h"
#include "spdlog/formatter.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace cohort::log {
namespace {

spdlog::level::level_enum ToSpdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

Level FromSpdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return Level::kDebug;
    case spdlog::level::info:
      return Level::kInfo;
    case spdlog::level::warn:
      return Level::kWarn;
    default:
      return Level::kError;
  }
}

// Renders spdlog's record (time, level, logger name = component) around the body
// RenderBody made.
class LineFormatter final : public spdlog::formatter {
 public:
  explicit LineFormatter(Format format) : format_(format) {}
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string line;
    AppendLine(format_, absl::FromChrono(msg.time), FromSpdlog(msg.level),
               std::string_view(msg.logger_name.data(), msg.logger_name.size()),
               std::string_view(msg.payload.data(), msg.payload.size()), line);
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<LineFormatter>(format_); }

 private:
  const Format format_;
};

struct SiteKey {
  std::string file;
  std::uint_least32_t line;
  bool operator==(const SiteKey&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const SiteKey& k) {
    return H::combine(std::move(h), k.file, k.line);
  }
};

class State {
 public:
  State() { Configure(LogOptions{}); }

  void Configure(LogOptions options) {
    absl::MutexLock lock(&mu_);
    if (options.out != nullptr) {
      sink_ = std::make_shared<spdlog::sinks::ostream_sink_mt>(*options.out, /*force_flush=*/true);
    } else {
      sink_ = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
    sink_->set_formatter(std::make_unique<LineFormatter>(options.format));
    level_.store(static_cast<int>(options.level), std::memory_order_relaxed);
    options_ = std::move(options);
    loggers_.clear();
    sites_.clear();
  }

  bool Enabled(Level level) const { return static_cast<int>(level) >= level_.load(std::memory_order_relaxed); }

  void Write(std::string_view component, Level level, std::string_view message, std::span<const Field> fields,
             const CallSite& site) {
    absl::MutexLock lock(&mu_);
    const absl::Time now = options_.now();
    auto [it, fresh] = sites_.try_emplace(SiteKey{site.file, site.line}, options_.rate_window);
    const RateLimiter::Verdict verdict = it->second.Admit(now);
    if (!verdict.write) return;
    const std::string body = RenderBody(options_.format, message, fields, verdict.suppressed);
    spdlog::logger& logger = LoggerFor(component);
    logger.log(absl::ToChronoTime(now), spdlog::source_loc{site.file, static_cast<int>(site.line), site.function},
               ToSpdlog(level), spdlog::string_view_t(body.data(), body.size()));
  }

 private:
  spdlog::logger& LoggerFor(std::string_view component) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = loggers_.find(absl::string_view(component.data(), component.size()));
    if (it == loggers_.end()) {
      auto logger = std::make_unique<spdlog::logger>(std::string(component), sink_);
      logger->set_level(spdlog::level::trace);  // the level is checked before (Enabled)
      it = loggers_.emplace(std::string(component), std::move(logger)).first;
    }
    return *it->second;
  }

  absl::Mutex mu_;
  std::atomic<int> level_{static_cast<int>(Level::kInfo)};
  LogOptions options_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<spdlog::sinks::sink> sink_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<spdlog::logger>> loggers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<SiteKey, RateLimiter> sites_ ABSL_GUARDED_BY(mu_);
};

State& GlobalState() {
  static State* const state = new State();  // never destroyed: threads may log during exit
  return *state;
}

}  // namespace

void Configure(LogOptions options) { GlobalState().Configure(std::move(options)); }

absl::StatusOr<Level> ParseLevel(std::string_view flag, std::string_view text) {
  for (Level level : {Level::kDebug, Level::kInfo, Level::kWarn, Level::kError}) {
    if (text == LevelName(level)) return level;
  }
  return absl::InvalidArgumentError(std::string(flag) + " \"" + std::string(text.substr(0, 16)) +
                                     "\" is invalid: use debug, info, warn or error");
}

absl::StatusOr<Format> ParseFormat(std::string_view flag, std::string_view text) {
  if (text == "text") return Format::kText;
  if (text == "json") return Format::kJson;
  return absl::InvalidArgumentError(std::string(flag) + " \"" + std::string(text.substr(0, 16)) +
                                     "\" is invalid: use text or json");
}

bool Logger::Enabled(Level level) { return GlobalState().Enabled(level); }

void Logger::Log(Level level, std::string_view message, std::initializer_list<Field> fields,
                 CallSite site) const {
  State& state = GlobalState();
  if (!state.Enabled(level)) return;
  state.Write(component_, level, message, std::span<const Field>(fields.begin(), fields.size()), site);
}

}  // namespace cohort::log
