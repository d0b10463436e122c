#pragma once

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"

namespace cohort::console {

// One HTTP request to the console's JSON API, copied out of the HTTP server's buffers
// so that it can cross to the event loop. The server bounds every part before it
// builds one (see HttpServer): the body is at most kMaxBodyBytes.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded, starting with "/api/"
  absl::flat_hash_map<std::string, std::string> query;  // decoded; a repeated key keeps the last
  std::string body;
  // The browser's bearer token (the `Authorization: Bearer` header, checked to be at
  // most kMaxTokenBytes of printable ASCII); empty when it sent none. Forwarded on
  // every call the request makes; never logged or echoed.
  std::string token;
};

// Longest bearer token the API accepts (cohortctl's tokens are 40-odd bytes).
inline constexpr std::size_t kMaxTokenBytes = 512;

// The API's answer: a status, a content type and a body. Error bodies are JSON
// {"error": "..."} whose message is bounded (see ErrorReply).
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // For downloads: sent as Content-Disposition when not empty.
  std::string disposition;
};

// Largest request body the API reads; a longer one is 413.
inline constexpr std::size_t kMaxBodyBytes = 4096;

}  // namespace cohort::console
