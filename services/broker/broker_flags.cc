#include "services/broker/broker_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"
#include "libs/common/message_limits.h"

ABSL_FLAG(absl::Duration, lease, absl::Seconds(30), "broker: lease of an attempt, renewed by the executor's heartbeats");
ABSL_FLAG(absl::Duration, heartbeat_interval, absl::Seconds(5), "broker: heartbeat interval asked of executors");
ABSL_FLAG(int, max_submit_batch, 10'000, "broker: most jobs per Submit (and releases per ReleaseJobs)");
ABSL_FLAG(int, max_payload_bytes, 1 << 20, "broker: largest job payload accepted");
ABSL_FLAG(int, max_spec_bytes, 2 << 20,
          "broker: largest serialized job spec accepted, payload included; a job must fit in one message on "
          "every hop, so --max-spec-bytes plus 8 MiB must stay within --max-message-bytes and 64 MiB");
ABSL_FLAG(int, max_wait_ids, 10'000, "broker: most job ids per Gather, Wait or AsCompleted");
ABSL_FLAG(int, starvation_every, 16,
          "broker: every Nth dispatch from a queue takes its oldest job whatever its priority (0: strict priority)");
ABSL_FLAG(int, max_message_bytes, cohort::common::kMaxMessageBytes, "broker: largest gRPC message accepted or sent");
ABSL_FLAG(absl::Duration, result_ttl, absl::Hours(24 * 7),
          "broker: how long an ended job is kept (a job's spec.result_ttl overrides it)");
ABSL_FLAG(absl::Duration, event_retention, absl::Hours(24), "broker: how long events are kept for Watch");
ABSL_FLAG(std::int64_t, min_free_disk, cohort::broker::BrokerAppOptions{}.min_free_disk,
          "broker: below this many free bytes on the data dir's filesystem, Submit, CancelJob, ReleaseJobs, RetryJob, "
          "bulk operations (but dry runs) and queue settings are refused with RESOURCE_EXHAUSTED, keeping the rest for "
          "work already accepted (0: off)");
ABSL_FLAG(int, max_queues, cohort::broker::BrokerAppOptions{}.max_queues,
          "broker: most queues the broker holds; a CreateQueue or Submit that would create one more is "
          "RESOURCE_EXHAUSTED (DeleteQueue frees one)");
ABSL_FLAG(int, metric_label_limit, cohort::broker::BrokerAppOptions{}.metric_label_limit,
          "broker: queues whose metrics carry their own name as the queue label (the first seen); the others share "
          "the label \"_other\"");

ABSL_FLAG(int, bulk_operations_kept, cohort::broker::BrokerAppOptions{}.bulk_operations_kept,
          "broker: records of bulk operations kept for GetBulkOperation/ListBulkOperations (the oldest finished "
          "ones go beyond it)");

namespace cohort::broker {

BrokerAppOptions BrokerOptionsFromFlags(std::string data_dir) {
  BrokerAppOptions options;
  options.data_dir = std::move(data_dir);
  options.lease = absl::GetFlag(FLAGS_lease);
  options.heartbeat_interval = absl::GetFlag(FLAGS_heartbeat_interval);
  options.max_submit_batch = absl::GetFlag(FLAGS_max_submit_batch);
  options.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  options.max_spec_bytes = absl::GetFlag(FLAGS_max_spec_bytes);
  options.max_wait_ids = absl::GetFlag(FLAGS_max_wait_ids);
  options.starvation_every = absl::GetFlag(FLAGS_starvation_every);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.result_ttl = absl::GetFlag(FLAGS_result_ttl);
  options.event_retention = absl::GetFlag(FLAGS_event_retention);
  options.min_free_disk = absl::GetFlag(FLAGS_min_free_disk);
  options.bulk_operations_kept = absl::GetFlag(FLAGS_bulk_operations_kept);
  options.max_queues = absl::GetFlag(FLAGS_max_queues);
  options.metric_label_limit = absl::GetFlag(FLAGS_metric_label_limit);
  return options;
}

}  // namespace cohort::broker
