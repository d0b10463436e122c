#pragma once

#include <cstddef>

namespace cohort::runtime {

// A node of an IntrusiveList. A node is in at most one list; it unlinks itself when
// destroyed, so an owner may drop a node without knowing whether it is still linked.
class ListNode {
 public:
  ListNode() = default;
  ListNode(const ListNode&) = delete;
  ListNode& operator=(const ListNode&) = delete;
  ~ListNode() { Unlink(); }

  bool linked() const { return next_ != nullptr; }

  // Removes the node from its list; a no-op when not linked. O(1).
  void Unlink() {
    if (next_ == nullptr) return;
    prev_->next_ = next_;
    next_->prev_ = prev_;
    prev_ = next_ = nullptr;
  }

 private:
  template <typename T>
  friend class IntrusiveList;
  ListNode* prev_ = nullptr;
  ListNode* next_ = nullptr;
};

// A doubly linked FIFO of nodes owned elsewhere (usually coroutine frames, so waiting
// allocates nothing). Destroying the list detaches its nodes, so a node that outlives
// its list unlinks safely. Single-threaded.
template <typename T>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev_ = head_.next_ = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() {
    while (!empty()) head_.next_->Unlink();
    head_.prev_ = head_.next_ = nullptr;
  }

  bool empty() const { return head_.next_ == &head_; }

  void PushBack(T* node) {
    ListNode* n = node;
    n->Unlink();
    n->prev_ = head_.prev_;
    n->next_ = &head_;
    head_.prev_->next_ = n;
    head_.prev_ = n;
  }

  T* front() const { return empty() ? nullptr : static_cast<T*>(head_.next_); }

  // Unlinks and returns the first node, or null when empty.
  T* PopFront() {
    T* node = front();
    if (node != nullptr) static_cast<ListNode*>(node)->Unlink();
    return node;
  }

  T* back() const { return empty() ? nullptr : static_cast<T*>(head_.prev_); }

  // Unlinks and returns the last node, or null when empty.
  T* PopBack() {
    T* node = back();
    if (node != nullptr) static_cast<ListNode*>(node)->Unlink();
    return node;
  }

  // Calls fn(node) for every node, allowing fn to unlink the node it is given.
  template <typename Fn>
  void ForEach(Fn fn) {
    for (ListNode* n = head_.next_; n != &head_;) {
      ListNode* next = n->next_;
      fn(static_cast<T*>(n));
      n = next;
    }
  }

 private:
  ListNode head_;
};

}  // namespace cohort::runtime
