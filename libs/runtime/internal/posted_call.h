#pragma once

#include <concepts>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace cohort::runtime::internal {

// A type-erased `void()` callable as it waits in the post ring: 24 bytes, so a ring
// slot (with its sequence number) is 32 and two share a cache line. A callable of up
// to two words that cannot throw when moved (a coroutine handle, a lambda capturing a
// few pointers or a shared_ptr) lives inline; a larger one is boxed on the heap first.
// Running it destroys it too, through one indirect call. It never moves: it is
// constructed where it waits and run (or dropped) there.
class PostedCall {
 public:
  template <typename D>
  static constexpr bool kInline = sizeof(D) <= 2 * sizeof(void*) && alignof(D) <= alignof(void*) &&
                                  std::is_nothrow_constructible_v<D, D&&>;

  // Constructs a PostedCall at `where` holding fn. Never throws: a callable that is
  // not kInline must already be boxed (EmplaceBoxed).
  template <typename F, typename D = std::decay_t<F>>
    requires kInline<D>
  static void EmplaceInline(void* where, F&& fn) noexcept {
    auto* call = new (where) PostedCall(&InlineOp<D>);
    new (call->storage_) D(std::forward<F>(fn));
  }
  template <typename D>
  static void EmplaceBoxed(void* where, D* boxed) noexcept {
    auto* call = new (where) PostedCall(&BoxedOp<D>);
    new (call->storage_) D*(boxed);
  }

  PostedCall(const PostedCall&) = delete;
  PostedCall& operator=(const PostedCall&) = delete;
  // Drops a callable that never ran.
  ~PostedCall() {
    if (op_ != nullptr) op_(this, /*run=*/false);
  }

  // Runs the callable and destroys it. Once only.
  void operator()() { std::exchange(op_, nullptr)(this, /*run=*/true); }

 private:
  using Op = void (*)(PostedCall*, bool run);
  explicit PostedCall(Op op) : op_(op) {}

  template <typename D>
  static void InlineOp(PostedCall* self, bool run) {
    D* fn = std::launder(reinterpret_cast<D*>(self->storage_));
    if (run) (*fn)();
    fn->~D();
  }
  template <typename D>
  static void BoxedOp(PostedCall* self, bool run) {
    D* fn = *std::launder(reinterpret_cast<D**>(self->storage_));
    if (run) (*fn)();
    delete fn;
  }

  Op op_;
  alignas(void*) unsigned char storage_[2 * sizeof(void*)];
};

}  // namespace cohort::runtime::internal
