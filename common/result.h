#pragma once

#include <string>
#include <utility>
#include <variant>

namespace bulwark {

/**
 * An error with a human-readable message. Used at every boundary that can fail on input
 * (config, CLI, sockets at start-up). The data plane never throws; it returns Status.
 * Thread: value type, any.
 */
class Status {
public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message), false); }

  bool isOk() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return message_; }

private:
  Status(std::string message, bool ok) : message_(std::move(message)), ok_(ok) {}
  std::string message_;
  bool ok_ = true;
};

/** Value or error. Thread: value type, any. */
template <typename T>
class Result {
public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool isOk() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return isOk(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Status& status() const {
    static const Status kOk;
    return isOk() ? kOk : std::get<Status>(v_);
  }
  const std::string& error() const { return status().message(); }

private:
  std::variant<T, Status> v_;
};

}  // namespace bulwark
