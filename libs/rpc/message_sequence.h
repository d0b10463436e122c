#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace cohort::rpc {

// The message numbers of one bidi stream, both ways: Next() numbers what this side
// writes (1, 2, 3, ...), Receive() checks what the other side wrote. A transport that
// loses, repeats or reorders whole messages while the connection stays up (a broken
// middlebox) is then noticed at the next message, instead of leaving the two sides
// with different views of credit and leases. A peer that numbers nothing (0 on every
// message) is not checked; one that has started numbering must go on.
class MessageSequence {
 public:
  // The number of the next message this side writes.
  std::uint64_t Next() { return ++sent_; }

  // OK when `seq` is one more than the last number received, or when the peer has
  // never numbered a message and `seq` is 0; DATA_LOSS naming both numbers otherwise.
  absl::Status Receive(std::uint64_t seq) {
    if (seq == 0 && received_ == 0) return absl::OkStatus();
    if (seq == received_ + 1) {
      received_ = seq;
      return absl::OkStatus();
    }
    return absl::DataLossError(absl::StrCat("message ", seq, " arrived after message ", received_,
                                            ": the stream lost, repeated or reordered messages"));
  }

 private:
  std::uint64_t sent_ = 0;
  std::uint64_t received_ = 0;
};

}  // namespace cohort::rpc
