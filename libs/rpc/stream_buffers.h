#pragma once

#include <cstddef>

namespace cohort::rpc {

// Buffer sizes of every pipelined stream, per direction: what bounds a stream's memory
// whatever the peer does (a client that stops reading, or leaves without a word).
// The inbox holds at most kStreamInbox messages. The outbox holds at most
// kStreamOutbox messages and, beyond the one being written, queues more only while
// fewer than kStreamOutboxBytes are buffered: at most kStreamOutboxBytes plus one
// message per stream.
inline constexpr std::size_t kStreamInbox = 64;
inline constexpr std::size_t kStreamOutbox = 64;
inline constexpr std::size_t kStreamOutboxBytes = 1 << 20;

}  // namespace cohort::rpc
