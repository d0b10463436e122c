#pragma once

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace cohort::runtime {

// A task's outcome: its value or the exception it raised. What Gather with
// kReturnExceptions puts in each slot (asyncio returns the exception object in place
// of the result).
template <typename T>
class Result {
 public:
  static Result Value(T value) { return Result(std::in_place_index<0>, std::move(value)); }
  static Result Error(std::exception_ptr error) { return Result(std::in_place_index<1>, std::move(error)); }

  bool ok() const { return outcome_.index() == 0; }
  // The value; rethrows the exception if there is one.
  const T& value() const& {
    if (!ok()) std::rethrow_exception(std::get<1>(outcome_));
    return std::get<0>(outcome_);
  }
  T&& value() && {
    if (!ok()) std::rethrow_exception(std::get<1>(outcome_));
    return std::move(std::get<0>(outcome_));
  }
  // The exception, or null.
  std::exception_ptr error() const { return ok() ? nullptr : std::get<1>(outcome_); }

 private:
  template <std::size_t I, typename U>
  Result(std::in_place_index_t<I> i, U&& u) : outcome_(i, std::forward<U>(u)) {}
  std::variant<T, std::exception_ptr> outcome_;
};

template <>
class Result<void> {
 public:
  static Result Value() { return Result(nullptr); }
  static Result Error(std::exception_ptr error) { return Result(std::move(error)); }
  bool ok() const { return error_ == nullptr; }
  void value() const {
    if (error_) std::rethrow_exception(error_);
  }
  std::exception_ptr error() const { return error_; }

 private:
  explicit Result(std::exception_ptr error) : error_(std::move(error)) {}
  std::exception_ptr error_;
};

}  // namespace cohort::runtime
