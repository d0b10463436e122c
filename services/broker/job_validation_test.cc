#include "services/broker/job_validation.h"

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cohort::broker {
namespace {

using ::testing::HasSubstr;
using cohort::v1::JobSpec;

JobSpec Valid() {
  JobSpec s;
  s.set_queue("default");
  s.set_kind("builtin.echo");
  s.set_payload("hi");
  return s;
}

JobSpec Exec() {
  JobSpec s = Valid();
  s.set_kind("exec");
  s.mutable_command()->add_argv("/bin/true");
  return s;
}

// One rule: a spec that breaks it, and the field the message must name.
struct Row {
  std::string rule;
  std::function<JobSpec()> spec;
  std::string field;
};

constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kHundredYearsAndADay = std::int64_t{100} * 365 * 86400 + 86400;
const double kNaN = std::nan("");

std::vector<Row> Rows() {
  return {
      {"queue malformed", [] { JobSpec s = Valid(); s.set_queue("A B"); return s; }, "jobs[3].queue"},
      {"queue empty", [] { JobSpec s = Valid(); s.clear_queue(); return s; }, "jobs[3].queue"},
      {"kind malformed", [] { JobSpec s = Valid(); s.set_kind("Echo!"); return s; }, "jobs[3].kind"},
      {"unknown builtin", [] { JobSpec s = Valid(); s.set_kind("builtin.nope"); return s; }, "jobs[3].kind"},
      {"exec without argv", [] { JobSpec s = Exec(); s.clear_command(); return s; }, "jobs[3].command.argv"},
      {"command on a builtin", [] { JobSpec s = Valid(); s.mutable_command()->add_argv("/bin/sh"); return s; },
       "jobs[3].command"},
      {"too many argv", [] { JobSpec s = Exec(); for (int i = 0; i < 257; ++i) s.mutable_command()->add_argv("x");
         return s; }, "jobs[3].command.argv"},
      {"argv entry too long", [] { JobSpec s = Exec(); s.mutable_command()->add_argv(std::string(40'000, 'x'));
         return s; }, "jobs[3].command.argv[1]"},
      {"too many env", [] { JobSpec s = Exec();
         for (int i = 0; i < 257; ++i) (*s.mutable_command()->mutable_env())["K" + std::to_string(i)] = "v";
         return s; }, "jobs[3].command.env"},
      {"env value too long", [] { JobSpec s = Exec();
         (*s.mutable_command()->mutable_env())["K"] = std::string(40'000, 'x'); return s; }, "jobs[3].command.env"},
      {"env key empty", [] { JobSpec s = Exec(); (*s.mutable_command()->mutable_env())[""] = "v"; return s; },
       "jobs[3].command.env"},
      {"cwd too long", [] { JobSpec s = Exec(); s.mutable_command()->set_cwd(std::string(5000, 'd')); return s; },
       "jobs[3].command.cwd"},
      {"payload too big", [] { JobSpec s = Valid(); s.set_payload(std::string((1 << 20) + 1, 'p')); return s; },
       "jobs[3].payload"},
      {"spec too big", [] { JobSpec s = Exec();
         for (int i = 0; i < 100; ++i) s.mutable_command()->add_argv(std::string(30'000, 'a'));
         return s; }, "jobs[3] is"},
      {"too many labels", [] { JobSpec s = Valid();
         for (int i = 0; i < 33; ++i) (*s.mutable_labels())["k" + std::to_string(i)] = "v";
         return s; }, "jobs[3].labels"},
      {"label value too long", [] { JobSpec s = Valid(); (*s.mutable_labels())["k"] = std::string(300, 'v');
         return s; }, "jobs[3].labels"},
      {"delay nanos 2e9", [] { JobSpec s = Valid(); s.mutable_delay()->set_nanos(2'000'000'000); return s; },
       "jobs[3].delay"},
      {"delay negative nanos", [] { JobSpec s = Valid(); s.mutable_delay()->set_nanos(-1); return s; },
       "jobs[3].delay"},
      {"delay negative", [] { JobSpec s = Valid(); s.mutable_delay()->set_seconds(-5); return s; },
       "jobs[3].delay"},
      {"delay over 100 years", [] { JobSpec s = Valid(); s.mutable_delay()->set_seconds(kHundredYearsAndADay);
         return s; }, "jobs[3].delay"},
      {"delay INT64_MAX", [] { JobSpec s = Valid(); s.mutable_delay()->set_seconds(kMax); return s; },
       "jobs[3].delay"},
      {"run_at INT64_MIN", [] { JobSpec s = Valid(); s.mutable_run_at()->set_seconds(kMin); return s; },
       "jobs[3].run_at"},
      {"run_at INT64_MAX", [] { JobSpec s = Valid(); s.mutable_run_at()->set_seconds(kMax); return s; },
       "jobs[3].run_at"},
      {"run_at negative nanos", [] { JobSpec s = Valid(); s.mutable_run_at()->set_nanos(-1); return s; },
       "jobs[3].run_at"},
      {"deadline INT64_MAX", [] { JobSpec s = Valid(); s.mutable_deadline()->set_seconds(kMax); return s; },
       "jobs[3].deadline"},
      {"deadline INT64_MIN", [] { JobSpec s = Valid(); s.mutable_deadline()->set_seconds(kMin); return s; },
       "jobs[3].deadline"},
      {"timeout negative", [] { JobSpec s = Valid(); s.mutable_timeout()->set_seconds(-1); return s; },
       "jobs[3].timeout"},
      {"timeout 2,777,778 h", [] { JobSpec s = Valid(); s.mutable_timeout()->set_seconds(std::int64_t{2'777'778} * 3600);
         return s; }, "jobs[3].timeout"},
      {"timeout over 100 years", [] { JobSpec s = Valid(); s.mutable_timeout()->set_seconds(kHundredYearsAndADay);
         return s; }, "jobs[3].timeout"},
      {"result_ttl over 100 years", [] { JobSpec s = Valid();
         s.mutable_result_ttl()->set_seconds(kHundredYearsAndADay); return s; }, "jobs[3].result_ttl"},
      {"result_ttl bad nanos", [] { JobSpec s = Valid(); s.mutable_result_ttl()->set_seconds(1);
         s.mutable_result_ttl()->set_nanos(-1); return s; }, "jobs[3].result_ttl"},
      {"max_attempts negative", [] { JobSpec s = Valid(); s.set_max_attempts(-1); return s; },
       "jobs[3].max_attempts"},
      {"max_attempts over the cap", [] { JobSpec s = Valid(); s.set_max_attempts(101); return s; },
       "jobs[3].max_attempts"},
      {"backoff initial negative", [] { JobSpec s = Valid(); s.mutable_backoff()->mutable_initial()->set_seconds(-1);
         return s; }, "jobs[3].backoff.initial"},
      {"backoff max over 100 years", [] { JobSpec s = Valid();
         s.mutable_backoff()->mutable_max()->set_seconds(kHundredYearsAndADay); return s; }, "jobs[3].backoff.max"},
      {"backoff multiplier below 1", [] { JobSpec s = Valid(); s.mutable_backoff()->set_multiplier(0.5); return s; },
       "jobs[3].backoff.multiplier"},
      {"backoff multiplier NaN", [] { JobSpec s = Valid(); s.mutable_backoff()->set_multiplier(kNaN); return s; },
       "jobs[3].backoff.multiplier"},
      {"backoff multiplier infinite", [] { JobSpec s = Valid();
         s.mutable_backoff()->set_multiplier(std::numeric_limits<double>::infinity()); return s; },
       "jobs[3].backoff.multiplier"},
      {"backoff jitter NaN", [] { JobSpec s = Valid(); s.mutable_backoff()->set_jitter(kNaN); return s; },
       "jobs[3].backoff.jitter"},
      {"backoff jitter over 1", [] { JobSpec s = Valid(); s.mutable_backoff()->set_jitter(1.5); return s; },
       "jobs[3].backoff.jitter"},
      {"too many parents", [] { JobSpec s = Valid(); for (int i = 0; i < 1001; ++i) s.add_depends_on_index(0);
         return s; }, "jobs[3].depends_on"},
      {"on_dependency_failure 99", [] { JobSpec s = Valid();
         s.set_on_dependency_failure(static_cast<cohort::v1::DependencyFailurePolicy>(99)); return s; },
       "jobs[3].on_dependency_failure"},
      {"idempotency_key too long", [] { JobSpec s = Valid(); s.set_idempotency_key(std::string(257, 'k'));
         return s; }, "jobs[3].idempotency_key"},
  };
}

TEST(ValidateSpec, EveryRuleIsInvalidArgumentNamingItsField) {
  const SpecLimits limits;
  for (const Row& row : Rows()) {
    SCOPED_TRACE(row.rule);
    absl::Status s = ValidateSpec(row.spec(), 3, limits);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(s.message(), HasSubstr(row.field));
    EXPECT_LT(s.message().size(), 1024u);
  }
}

TEST(ValidateSpec, AcceptsSpecsAtEveryLimit) {
  const SpecLimits limits;
  JobSpec s = Exec();
  for (int i = 1; i < 256; ++i) s.mutable_command()->add_argv("a");
  (*s.mutable_command()->mutable_env())["K"] = std::string(limits.max_command_string_bytes, 'v');
  s.mutable_command()->set_cwd(std::string(limits.max_cwd_bytes, 'd'));
  s.mutable_delay()->set_seconds(std::int64_t{100} * 365 * 86400);
  s.mutable_timeout()->set_nanos(999'999'999);
  s.mutable_backoff()->set_multiplier(2);
  s.mutable_backoff()->set_jitter(1);
  s.set_on_dependency_failure(cohort::v1::DEPENDENCY_FAILURE_POLICY_FAIL);
  EXPECT_TRUE(ValidateSpec(s, 0, limits).ok()) << ValidateSpec(s, 0, limits);
  JobSpec t = Valid();
  t.mutable_run_at()->set_seconds(253'402'300'799);  // 9999-12-31T23:59:59Z
  t.mutable_deadline()->set_seconds(-62'135'596'800);  // 0001-01-01: in the past, so at once
  EXPECT_TRUE(ValidateSpec(t, 0, limits).ok()) << ValidateSpec(t, 0, limits);
}

TEST(ValidateSpec, QuotesAtMostAPrefixOfAHugeName) {
  JobSpec s = Valid();
  s.set_queue(std::string(1 << 20, 'Q'));
  absl::Status status = ValidateSpec(s, 0, SpecLimits{});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(status.message().size(), 1024u);
}

}  // namespace
}  // namespace cohort::broker
