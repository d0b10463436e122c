#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "services/console/http_types.h"

namespace cohort::console {

// `text` as a JSON string literal, quotes included. Invalid UTF-8 bytes become U+FFFD,
// so the output is always valid JSON whatever the input.
std::string JsonString(absl::string_view text);

// A message in protobuf's canonical JSON mapping (lowerCamelCase names, enums as
// names, bytes as base64, zero values left out), on one line.
std::string ProtoJson(const google::protobuf::Message& message);

// A JSON error reply: {"error": "<message>"} with the message cut to
// kMaxErrorMessageBytes, so no caller input or upstream text can make it unbounded.
inline constexpr std::size_t kMaxErrorMessageBytes = 512;
HttpReply ErrorReply(int status, absl::string_view message);

// How the console shows a payload or a result without sending all of it:
//   {"size": N, "encoding": "text"|"hex", "data": "...", "truncated": bool}
// Text when the bytes are valid UTF-8 with no control characters but tab, newline and
// carriage return (cut to `max_text` bytes at a character boundary); otherwise hex of
// the first `max_hex` bytes, two digits per byte, space-separated.
std::string BytesPreviewJson(absl::string_view bytes, std::size_t max_text = 64 * 1024,
                             std::size_t max_hex = 4 * 1024);

}  // namespace cohort::console
