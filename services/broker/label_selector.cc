#include "services/broker/label_selector.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "libs/common/quote.h"

namespace cohort::broker {
namespace {

bool IsSpecial(char c) { return c == ',' || c == '=' || c == '!' || c == '(' || c == ')'; }
bool IsSpace(char c) { return absl::ascii_isspace(static_cast<unsigned char>(c)); }

// A recursive-descent parser over the text; `pos_` is the byte offset of the next
// token, which every error names.
class Parser {
 public:
  Parser(absl::string_view text, absl::string_view field) : text_(text), field_(field) {}

  absl::Status Parse(std::vector<LabelRequirement>& out) {
    SkipSpace();
    if (AtEnd()) return absl::OkStatus();
    while (true) {
      if (out.size() == LabelSelector::kMaxRequirements) {
        return Error(absl::StrCat("more than ", LabelSelector::kMaxRequirements, " requirements"));
      }
      LabelRequirement r;
      if (absl::Status s = Requirement(r); !s.ok()) return s;
      out.push_back(std::move(r));
      SkipSpace();
      if (AtEnd()) return absl::OkStatus();
      if (!Take(',')) return Error("expected \",\" or the end after a requirement");
      SkipSpace();
    }
  }

 private:
  absl::Status Requirement(LabelRequirement& r) {
    if (Take('!')) {
      SkipSpace();
      if (!Word(r.key)) return Error("expected a key after \"!\"");
      r.op = LabelRequirement::Op::kNotExists;
      return absl::OkStatus();
    }
    if (!Word(r.key)) return Error("expected a key or \"!\" and a key");
    SkipSpace();
    if (AtEnd() || Peek() == ',') {
      r.op = LabelRequirement::Op::kExists;
      return absl::OkStatus();
    }
    if (Take('=')) {
      Take('=');
      r.op = LabelRequirement::Op::kEquals;
      return ExactValue(r);
    }
    if (Take('!')) {
      if (!Take('=')) return Error("expected \"!=\"");
      r.op = LabelRequirement::Op::kNotEquals;
      return ExactValue(r);
    }
    const std::size_t op_pos = pos_;
    std::string op;
    if (Word(op) && (op == "in" || op == "notin")) {
      r.op = op == "in" ? LabelRequirement::Op::kIn : LabelRequirement::Op::kNotIn;
      return ValueSet(r);
    }
    pos_ = op_pos;
    return Error("expected \"=\", \"==\", \"!=\", \"in\", \"notin\", \",\" or the end after a key");
  }

  // The value after =, == or !=: a word, or nothing (the empty value).
  absl::Status ExactValue(LabelRequirement& r) {
    SkipSpace();
    std::string value;
    if (!Word(value) && !AtEnd() && Peek() != ',') return Error("expected a value");
    r.values.push_back(std::move(value));
    return absl::OkStatus();
  }

  absl::Status ValueSet(LabelRequirement& r) {
    SkipSpace();
    if (!Take('(')) return Error("expected \"(\" to open the values");
    while (true) {
      SkipSpace();
      std::string value;
      if (!Word(value)) return Error("expected a value in the parentheses");
      r.values.push_back(std::move(value));
      SkipSpace();
      if (Take(')')) break;
      if (!Take(',')) return Error("expected \",\" or \")\" after a value");
    }
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
    return absl::OkStatus();
  }

  // A run of bytes other than whitespace and the special characters; false if empty.
  bool Word(std::string& out) {
    const std::size_t start = pos_;
    while (!AtEnd() && !IsSpace(Peek()) && !IsSpecial(Peek())) ++pos_;
    out = std::string(text_.substr(start, pos_ - start));
    return pos_ > start;
  }

  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  bool Take(char c) {
    if (AtEnd() || Peek() != c) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        field_, " at byte ", pos_, ": ", what,
        AtEnd() ? std::string(" (found the end)") : absl::StrCat(" (found ", common::QuoteBounded(text_.substr(pos_), 16), ")"),
        " in ", common::QuoteBounded(text_)));
  }

  absl::string_view text_;
  absl::string_view field_;
  std::size_t pos_ = 0;
};

}  // namespace

bool LabelRequirement::Matches(const google::protobuf::Map<std::string, std::string>& labels) const {
  auto it = labels.find(key);
  const bool has = it != labels.end();
  switch (op) {
    case Op::kEquals:
      return has && it->second == values.front();
    case Op::kNotEquals:
      return !has || it->second != values.front();
    case Op::kIn:
      return has && std::binary_search(values.begin(), values.end(), it->second);
    case Op::kNotIn:
      return !has || !std::binary_search(values.begin(), values.end(), it->second);
    case Op::kExists:
      return has;
    case Op::kNotExists:
      return !has;
  }
  return false;
}

absl::StatusOr<LabelSelector> LabelSelector::Parse(absl::string_view text, absl::string_view field) {
  if (text.size() > kMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", text.size(), " bytes: the limit is ", kMaxBytes,
                                                   " (", common::QuoteBounded(text), ")"));
  }
  LabelSelector selector;
  if (absl::Status s = Parser(text, field).Parse(selector.requirements_); !s.ok()) return s;
  return selector;
}

bool LabelSelector::Matches(const google::protobuf::Map<std::string, std::string>& labels) const {
  for (const LabelRequirement& r : requirements_) {
    if (!r.Matches(labels)) return false;
  }
  return true;
}

}  // namespace cohort::broker
