#include "services/console/json.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace cohort::console {
namespace {

// Length of the UTF-8 sequence starting at text[i], or 0 if it is not a valid one
// (overlong forms, surrogates and code points past U+10FFFF are invalid).
std::size_t Utf8Length(absl::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(text[k]); };
  const std::uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2;
    cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3;
    cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  static constexpr std::uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

bool IsShowableText(absl::string_view bytes) {
  for (std::size_t i = 0; i < bytes.size();) {
    const std::size_t n = Utf8Length(bytes, i);
    if (n == 0) return false;
    const auto c = static_cast<std::uint8_t>(bytes[i]);
    if (n == 1 && (c < 0x20 || c == 0x7F) && c != '\t' && c != '\n' && c != '\r') return false;
    i += n;
  }
  return true;
}

// The longest prefix of valid UTF-8 `text` of at most `max` bytes that ends on a
// character boundary.
absl::string_view CutAtCharacter(absl::string_view text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t end = max;
  while (end > 0 && (static_cast<std::uint8_t>(text[end]) & 0xC0) == 0x80) --end;
  return text.substr(0, end);
}

}  // namespace

std::string JsonString(absl::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = Utf8Length(text, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text.data() + i, n);
      i += n;
      continue;
    }
    const char c = text[i++];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':  // never "</script>" in a page that embeds this
        out += "\\u003c";
        break;
      default:
        if (static_cast<std::uint8_t>(c) < 0x20 || c == 0x7F) {
          absl::StrAppend(&out, "\\u00", absl::Hex(static_cast<std::uint8_t>(c), absl::kZeroPad2));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  // Only fails for messages that cannot be JSON at all (Any without its type), which
  // the console's protos do not contain; an empty object keeps the reply valid.
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

HttpReply ErrorReply(int status, absl::string_view message) {
  HttpReply reply;
  reply.status = status;
  absl::string_view cut = message.substr(0, kMaxErrorMessageBytes);
  reply.body = absl::StrCat("{\"error\":", JsonString(cut), "}");
  return reply;
}

std::string BytesPreviewJson(absl::string_view bytes, std::size_t max_text, std::size_t max_hex) {
  if (IsShowableText(bytes)) {
    absl::string_view shown = CutAtCharacter(bytes, max_text);
    return absl::StrCat("{\"size\":", bytes.size(), ",\"encoding\":\"text\",\"data\":", JsonString(shown),
                        ",\"truncated\":", shown.size() < bytes.size() ? "true" : "false", "}");
  }
  absl::string_view shown = bytes.substr(0, max_hex);
  std::string hex;
  hex.reserve(shown.size() * 3);
  for (std::size_t i = 0; i < shown.size(); ++i) {
    if (i > 0) hex.push_back(' ');
    absl::StrAppend(&hex, absl::Hex(static_cast<std::uint8_t>(shown[i]), absl::kZeroPad2));
  }
  return absl::StrCat("{\"size\":", bytes.size(), ",\"encoding\":\"hex\",\"data\":\"", hex,
                      "\",\"truncated\":", shown.size() < bytes.size() ? "true" : "false", "}");
}

}  // namespace cohort::console
