#pragma once

#include <cstring>
#include <ostream>
#include <string>
#include <string_view>

namespace cohort::broker {

// A job id as the broker's indexes hold it, in 24 bytes: ids of 1-24 bytes without a
// NUL (the broker's own are 24 hex characters) inline, NUL-padded; any other string on
// the heap. It compares, orders and hashes as the string it holds, so a set of them
// iterates in id order and is searched with a std::string or string_view
// (CompactIdLess is transparent). A std::string of 24 bytes costs 32 bytes plus a heap
// block of 32-48; in an absl::btree_set an entry of this type costs about 27 bytes
// against 85.
class CompactId {
 public:
  static constexpr std::size_t kInline = 24;

  CompactId() { std::memset(bytes_, 0, sizeof bytes_); }
  explicit CompactId(std::string_view id) {
    std::memset(bytes_, 0, sizeof bytes_);
    if (!id.empty() && id.size() <= kInline && id.find('\0') == std::string_view::npos) {
      std::memcpy(bytes_, id.data(), id.size());
    } else if (!id.empty()) {
      bytes_[1] = kOutOfLine;
      SetHeap(new std::string(id));
    }
  }
  CompactId(const CompactId& other) : CompactId(other.view()) {}
  CompactId(CompactId&& other) noexcept {
    std::memcpy(bytes_, other.bytes_, sizeof bytes_);
    std::memset(other.bytes_, 0, sizeof other.bytes_);
  }
  CompactId& operator=(const CompactId& other) {
    if (this != &other) *this = CompactId(other.view());
    return *this;
  }
  CompactId& operator=(CompactId&& other) noexcept {
    if (this != &other) {
      Release();
      std::memcpy(bytes_, other.bytes_, sizeof bytes_);
      std::memset(other.bytes_, 0, sizeof other.bytes_);
    }
    return *this;
  }
  ~CompactId() { Release(); }

  std::string_view view() const {
    if (out_of_line()) return *Heap();
    return std::string_view(bytes_, strnlen(bytes_, kInline));
  }
  operator std::string_view() const { return view(); }  // NOLINT: an id is its string
  std::string str() const { return std::string(view()); }
  bool empty() const { return bytes_[0] == '\0' && !out_of_line(); }

  friend bool operator==(const CompactId& a, const CompactId& b) { return a.view() == b.view(); }
  friend bool operator==(const CompactId& a, std::string_view b) { return a.view() == b; }
  friend auto operator<=>(const CompactId& a, const CompactId& b) { return a.view() <=> b.view(); }
  friend auto operator<=>(const CompactId& a, std::string_view b) { return a.view() <=> b; }
  template <typename H>
  friend H AbslHashValue(H h, const CompactId& id) {
    return H::combine(std::move(h), id.view());
  }
  friend std::ostream& operator<<(std::ostream& os, const CompactId& id) { return os << id.view(); }

 private:
  static constexpr char kOutOfLine = 1;  // bytes_[1] when bytes_[0] is NUL: see Heap
  bool out_of_line() const { return bytes_[0] == '\0' && bytes_[1] == kOutOfLine; }
  // Out of line, the string's address is in bytes_[8..16).
  const std::string* Heap() const {
    const std::string* s;
    std::memcpy(&s, bytes_ + 8, sizeof s);
    return s;
  }
  void SetHeap(const std::string* s) { std::memcpy(bytes_ + 8, &s, sizeof s); }
  void Release() {
    if (out_of_line()) delete Heap();
    std::memset(bytes_, 0, sizeof bytes_);
  }

  alignas(8) char bytes_[kInline];
};

// Orders CompactIds, std::strings and string_views by their bytes, so that ordered
// containers of CompactId are searched with any of them.
struct CompactIdLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a < b; }
};

}  // namespace cohort::broker
