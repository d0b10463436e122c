#include "services/executor/executor_metrics.h"

#include "libs/common/metrics.h"

namespace cohort::executor {

const prometheus::Histogram::BucketBoundaries& ExecutorMetrics::Buckets() { return common::RunDurationBuckets(); }

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
      prefetch_window_(prometheus::BuildGauge()
                           .Name("cohort_executor_prefetch_window")
                           .Help("Assigned attempts the executor asks to hold unstarted beyond its capacity now.")
                           .Register(r)
                           .Add({})),
      connected_(prometheus::BuildGauge()
                     .Name("cohort_executor_connected")
                     .Help("1 while a Connect stream to the broker is open.")
                     .Register(r)
                     .Add({})),
      reconnects_(prometheus::BuildCounter()
                      .Name("cohort_executor_reconnects_total")
                      .Help("Connect streams that ended and were retried.")
                      .Register(r)
                      .Add({})),
      stream_stalls_(prometheus::BuildCounter()
                         .Name("cohort_executor_stream_stalls_total")
                         .Help("Connect streams cancelled because the broker had sent nothing for 3 "
                               "heartbeat intervals.")
                         .Register(r)
                         .Add({})),
      stream_gaps_(prometheus::BuildCounter()
                       .Name("cohort_executor_stream_gaps_total")
                       .Help("Connect streams closed because a broker message number was missing, repeated "
                             "or out of order (messages lost on a live connection).")
                       .Register(r)
                       .Add({})),
      spawn_seconds_(prometheus::BuildHistogram()
                         .Name("cohort_executor_spawn_seconds")
                         .Help("exec: time from the spawn request to the child process existing.")
                         .Register(r)
                         .Add({}, common::LatencyBuckets())),
      output_bytes_(prometheus::BuildCounter()
                        .Name("cohort_executor_output_bytes_total")
                        .Help("exec: bytes child processes wrote, kept or not, by stream.")
                        .Register(r)),
      stdout_bytes_(output_bytes_.Add({{"stream", "stdout"}})),
      stderr_bytes_(output_bytes_.Add({{"stream", "stderr"}})),
      progress_reports_(prometheus::BuildCounter()
                            .Name("cohort_executor_progress_reports_total")
                            .Help("Progress reports from jobs: sent to the broker, superseded before "
                                  "they were sent, or malformed.")
                            .Register(r)),
      progress_sent_(progress_reports_.Add({{"outcome", "sent"}})),
      progress_superseded_(progress_reports_.Add({{"outcome", "superseded"}})),
      progress_malformed_(progress_reports_.Add({{"outcome", "malformed"}})) {}

}  // namespace cohort::executor
