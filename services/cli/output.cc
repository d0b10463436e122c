#include "libs/common/proto_time.h"
#include "services/cli/output.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace cohort::cli {

using common::FromProto;

bool AbslParseFlag(absl::string_view text, OutputFormat* format, std::string* error) {
  if (text == "table") {
    *format = OutputFormat::kTable;
    return true;
  }
  if (text == "json") {
    *format = OutputFormat::kJson;
    return true;
  }
  *error = "use table or json";
  return false;
}

std::string AbslUnparseFlag(OutputFormat format) { return format == OutputFormat::kJson ? "json" : "table"; }

namespace {

// Each bytes field of `message` in its JSON object `json`: valid UTF-8 becomes the
// text itself, with "<field>Encoding": "text"; anything else stays base64, with
// "<field>Encoding": "base64". Recurses into messages, except well-known types, which
// JSON prints as scalars.
void TextForBytes(const google::protobuf::Message& message, google::protobuf::Struct& json) {
  const google::protobuf::Reflection& reflection = *message.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection.ListFields(message, &fields);
  for (const google::protobuf::FieldDescriptor* field : fields) {
    auto it = json.mutable_fields()->find(field->json_name());
    if (it == json.mutable_fields()->end()) continue;
    if (field->type() == google::protobuf::FieldDescriptor::TYPE_BYTES && !field->is_repeated()) {
      const std::string bytes = reflection.GetString(message, field);
      const bool text = IsUtf8(bytes);
      if (text) it->second.set_string_value(bytes);
      (*json.mutable_fields())[field->json_name() + "Encoding"].set_string_value(text ? "text" : "base64");
      continue;
    }
    if (field->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE || field->is_map() ||
        absl::StartsWith(field->message_type()->full_name(), "google.protobuf.")) {
      continue;
    }
    if (field->is_repeated()) {
      if (!it->second.has_list_value()) continue;
      auto* items = it->second.mutable_list_value()->mutable_values();
      for (int i = 0; i < reflection.FieldSize(message, field) && i < items->size(); ++i) {
        if ((*items)[i].has_struct_value()) {
          TextForBytes(reflection.GetRepeatedMessage(message, field, i), *(*items)[i].mutable_struct_value());
        }
      }
    } else if (it->second.has_struct_value()) {
      TextForBytes(reflection.GetMessage(message, field), *it->second.mutable_struct_value());
    }
  }
}

}  // namespace

bool IsUtf8(absl::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    uint32_t code = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    for (std::size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      const unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      code = (code << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && code < 0x80) || (n == 2 && code < 0x800) || (n == 3 && code < 0x10000) || code > 0x10FFFF ||
        (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

void PrintJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string json;
  google::protobuf::Struct object;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options).ok() ||
      !google::protobuf::util::JsonStringToMessage(json, &object).ok()) {
    // Only a message with invalid UTF-8 in a string field fails; say so in the object.
    PrintRaw("{\"error\":\"the response cannot be printed as JSON\"}\n");
    return;
  }
  TextForBytes(message, object);
  json.clear();
  if (!google::protobuf::util::MessageToJsonString(object, &json).ok()) {
    json = R"({"error":"the response cannot be printed as JSON"})";
  }
  json.push_back('\n');
  PrintRaw(json);
}

void PrintRaw(absl::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

namespace {

// Characters, not bytes: UTF-8 continuation bytes do not count.
std::size_t DisplayWidth(absl::string_view s) {
  return std::count_if(s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

}  // namespace

Table::Table(std::vector<std::string> header) : has_header_(!header.empty()) {
  if (has_header_) rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }

std::string Table::Render() const {
  std::vector<std::size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], DisplayWidth(row[c]));
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(widths[c] - DisplayWidth(row[c]) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

void Table::Print() const { PrintRaw(Render()); }

std::string StateName(cohort::v1::JobState state) {
  std::string name = cohort::v1::JobState_Name(state);
  constexpr absl::string_view kPrefix = "JOB_STATE_";
  if (absl::StartsWith(name, kPrefix)) name.erase(0, kPrefix.size());
  return name.empty() ? absl::StrCat(static_cast<int>(state)) : name;
}

bool ParseJobState(absl::string_view text, cohort::v1::JobState* state) {
  std::string upper = absl::AsciiStrToUpper(std::string(text));
  if (!absl::StartsWith(upper, "JOB_STATE_")) upper = absl::StrCat("JOB_STATE_", upper);
  return cohort::v1::JobState_Parse(upper, state) && *state != cohort::v1::JOB_STATE_UNSPECIFIED;
}

std::string FormatAge(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  if (d < absl::Seconds(1)) return absl::StrCat(absl::ToInt64Milliseconds(d), "ms");
  const int64_t s = absl::ToInt64Seconds(d);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string FormatTime(const google::protobuf::Timestamp& t, bool has) {
  if (!has) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromProto(t), absl::UTCTimeZone());
}

std::string FormatAgo(const google::protobuf::Timestamp& t, bool has, absl::Time now) {
  if (!has) return "-";
  return absl::StrCat(FormatAge(now - FromProto(t)), " ago");
}

std::string Excerpt(absl::string_view bytes, std::size_t max) {
  std::string out;
  std::size_t chars = 0;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if ((c & 0xC0) != 0x80 && chars == max) {
      out += "...";
      return out;
    }
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      out += absl::StrFormat("\\x%02x", c);
    } else {
      out.push_back(static_cast<char>(c));
    }
    if ((c & 0xC0) != 0x80) ++chars;
  }
  return out;
}

std::string OutcomeText(const cohort::v1::JobOutcome& outcome) {
  if (outcome.has_error()) return Excerpt(absl::StrCat(outcome.error().code(), ": ", outcome.error().message()), 60);
  absl::string_view result = outcome.result();
  if (absl::EndsWith(result, "\n")) result.remove_suffix(1);
  return Excerpt(result);
}

}  // namespace cohort::cli
