// Status and Result<T>: error returns at I/O and request edges (files, user input, HTTP).
// Internal invariants use assertions instead.
#pragma once
#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace tachyon {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // bad user input: flags, JSON, token ids
  kNotFound,         // missing file, key or tensor
  kCorrupt,          // file contents violate their format
  kUnsupported,      // valid input this build does not handle
  kIo,               // OS-level read/map failure
  kInternal,
};

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }
  bool is_ok() const { return code_ == ErrorCode::kOk; }
  explicit operator bool() const { return is_ok(); }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status corrupt(std::string m) { return {ErrorCode::kCorrupt, std::move(m)}; }
inline Status not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }

// Holds either a value or a non-ok Status.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).is_ok()); }
  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& value() const& { return std::get<T>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const Status& status() const {
    static const Status ok_status;
    return is_ok() ? ok_status : std::get<Status>(v_);
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace tachyon

#define TACHYON_RETURN_IF_ERROR(expr)          \
  do {                                         \
    ::tachyon::Status _st = (expr);            \
    if (!_st.is_ok()) return _st;              \
  } while (0)
