#include "services/broker/broker_flags.h"

#include <utility>

#include "absl/flags/flag.h"
#include "absl/time/time.h"

// Each default is the one BrokerAppOptions declares; the flag's help is its doc.
namespace {
const cohort::broker::BrokerAppOptions kDefaults;
}  // namespace

ABSL_FLAG(absl::Duration, lease, kDefaults.lease,
          "broker: lease of an attempt, renewed by the executor's heartbeats");
ABSL_FLAG(absl::Duration, heartbeat_interval, kDefaults.heartbeat_interval,
          "broker: heartbeat interval asked of executors");
ABSL_FLAG(int, max_submit_batch, kDefaults.max_submit_batch,
          "broker: most jobs per Submit (and releases per ReleaseJobs)");
ABSL_FLAG(int, max_payload_bytes, kDefaults.max_payload_bytes, "broker: largest job payload accepted");
ABSL_FLAG(int, max_spec_bytes, kDefaults.max_spec_bytes,
          "broker: largest serialized job spec accepted, payload included; a job must fit in one message on "
          "every hop, so --max-spec-bytes plus 8 MiB must stay within --max-message-bytes and 64 MiB");
ABSL_FLAG(int, max_wait_ids, kDefaults.max_wait_ids, "broker: most job ids per Gather, Wait or AsCompleted");
ABSL_FLAG(int, starvation_every, kDefaults.starvation_every,
          "broker: every Nth dispatch from a queue takes its oldest job whatever its priority (0: strict priority)");
ABSL_FLAG(int, max_message_bytes, kDefaults.max_message_bytes, "broker: largest gRPC message accepted or sent");
ABSL_FLAG(absl::Duration, result_ttl, kDefaults.result_ttl,
          "broker: how long an ended job is kept (a job's spec.result_ttl overrides it)");
ABSL_FLAG(absl::Duration, event_retention, kDefaults.event_retention, "broker: how long events are kept for Watch");
ABSL_FLAG(std::int64_t, min_free_disk, kDefaults.min_free_disk,
          "broker: below this many free bytes on the data dir's filesystem, Submit, CancelJob, ReleaseJobs, RetryJob, "
          "bulk operations (but dry runs) and queue settings are refused with RESOURCE_EXHAUSTED, keeping the rest for "
          "work already accepted (0: off)");
ABSL_FLAG(int, max_queues, kDefaults.max_queues,
          "broker: most queues the broker holds; a CreateQueue or Submit that would create one more is "
          "RESOURCE_EXHAUSTED (DeleteQueue frees one)");
ABSL_FLAG(int, max_kinds, kDefaults.max_kinds,
          "broker: most distinct job kinds the broker holds (a kind counts while any job of it is kept); a Submit "
          "that would bring one more is RESOURCE_EXHAUSTED (1 to 1000000)");
ABSL_FLAG(int, metric_label_limit, kDefaults.metric_label_limit,
          "broker: queues whose metrics carry their own name as the queue label (the first seen); the others share "
          "the label \"_other\"");

ABSL_FLAG(int, bulk_operations_kept, kDefaults.bulk_operations_kept,
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
  options.max_kinds = absl::GetFlag(FLAGS_max_kinds);
  options.metric_label_limit = absl::GetFlag(FLAGS_metric_label_limit);
  return options;
}

}  // namespace cohort::broker
