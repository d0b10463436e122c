#include "services/executor/executor_metrics.h"

namespace cohort::executor {

const prometheus::Histogram::BucketBoundaries& ExecutorMetrics::Buckets() {
  static const auto* b =
      new prometheus::Histogram::BucketBoundaries{0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
  return *b;
}

ExecutorMetrics::ExecutorMetrics(prometheus::Registry& r)
    : attempts_(prometheus::BuildCounter()
                    .Name("cohort_executor_attempts_total")
                    .Help("Attempts that ended, by kind and outcome.")
                    .Register(r)),
      run_seconds_(prometheus::BuildHistogram()
                       .Name("cohort_executor_run_duration_seconds")
                       .Help("Run time of an attempt, by kind.")
                       .Register(r)),
      running_(prometheus::BuildGauge().Name("cohort_executor_running").Help("Attempts running now.").Register(r).Add({})),
      capacity_(prometheus::BuildGauge().Name("cohort_executor_capacity").Help("Most attempts at once.").Register(r).Add({})),
      connected_(prometheus::BuildGauge()
                     .Name("cohort_executor_connected")
                     .Help("1 while a Connect stream to the broker is open.")
                     .Register(r)
                     .Add({})),
      reconnects_(prometheus::BuildCounter()
                      .Name("cohort_executor_reconnects_total")
                      .Help("Connect streams that ended and were retried.")
                      .Register(r)
                      .Add({})) {}

}  // namespace cohort::executor
