#pragma once

#include <string>

#include "services/broker/broker_app.h"

namespace cohort::broker {

// The broker's tuning flags (--lease, --heartbeat-interval, --max-submit-batch,
// --max-payload-bytes, --max-spec-bytes, --max-wait-ids, --starvation-every, --max-message-bytes,
// --result-ttl, --event-retention, --max-queues, --max-kinds, --metric-label-limit, --bulk-operations-kept), defined
// once for cohort-broker and cohort-dev so both spell, default and document them alike; each default is
// the one BrokerAppOptions declares. Returns them as
// options for a broker whose store is at `data_dir`; BrokerApp::Validate checks them.
BrokerAppOptions BrokerOptionsFromFlags(std::string data_dir);

}  // namespace cohort::broker
