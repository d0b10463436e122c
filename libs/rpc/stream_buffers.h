#pragma once

#include <cstddef>

namespace cohort::rpc {

// Buffer sizes of every pipelined stream, in messages per direction: what bounds a
// stream's memory whatever the peer does.
inline constexpr std::size_t kStreamInbox = 64;
inline constexpr std::size_t kStreamOutbox = 64;

}  // namespace cohort::rpc
