// Result<T> and Error: how every Cloister library reports failure.
//
// Library code does not throw. A function that can fail returns Result<T>, a [[nodiscard]]
// std::expected<T, Error>; callers branch on Error::code(). Propagate with
// CLOISTER_RETURN_IF_ERROR and CLOISTER_ASSIGN_OR_RETURN. Error messages never carry secrets.
//
// Thread safety: values; no shared state.
#ifndef CLOISTER_COMMON_RESULT_H_
#define CLOISTER_COMMON_RESULT_H_

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace cloister {

// The short, documented list of failure kinds (docs/errors.md).
enum class ErrorCode {
  kMalformed,       // input did not parse or broke a format rule
  kVerifyFailed,    // a signature, chain, digest, tag or validity check failed
  kPolicyDenied,    // a policy or expectation refused the request
  kNotFound,        // a named thing does not exist
  kIo,              // the operating system refused (files, sockets, processes)
  kUnavailable,     // a peer or resource is not reachable now; retrying may help
  kInternal,        // a bug or a library failure that input cannot explain
  kInvalidArgument, // the caller passed a value outside the documented range
};

// Returns the stable lower-case name of `code` ("malformed", "verify_failed", ...).
std::string_view ErrorCodeName(ErrorCode code);
// The inverse of ErrorCodeName (for errors that crossed a wire); kInternal for unknown names.
ErrorCode ErrorCodeFromName(std::string_view name);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Error Malformed(std::string m) { return {ErrorCode::kMalformed, std::move(m)}; }
  static Error VerifyFailed(std::string m) { return {ErrorCode::kVerifyFailed, std::move(m)}; }
  static Error PolicyDenied(std::string m) { return {ErrorCode::kPolicyDenied, std::move(m)}; }
  static Error NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Error Io(std::string m) { return {ErrorCode::kIo, std::move(m)}; }
  static Error Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Error Internal(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }
  static Error InvalidArgument(std::string m) {
    return {ErrorCode::kInvalidArgument, std::move(m)};
  }
  // Returns an Error of kind kIo whose message ends with strerror(errno_value).
  static Error FromErrno(std::string_view what, int errno_value);

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Returns a copy whose message is "`context`: <message>".
  Error WithContext(std::string_view context) const;
  // Returns "<code name>: <message>".
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

// A must-use std::expected<T, Error>. An Error converts implicitly, so `return Error::...;`
// works in any function returning Result<T>.
template <typename T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using Base = std::expected<T, Error>;
  using Base::Base;
  Result(Error e) : Base(std::unexpect, std::move(e)) {}  // NOLINT: implicit on purpose
  Result(const Base& b) : Base(b) {}                       // NOLINT
  Result(Base&& b) : Base(std::move(b)) {}                 // NOLINT
};

using Status = Result<void>;

inline Status OkStatus() { return {}; }

}  // namespace cloister

#define CLOISTER_CONCAT_INNER_(a, b) a##b
#define CLOISTER_CONCAT_(a, b) CLOISTER_CONCAT_INNER_(a, b)

// Returns the error of `expr` (a Result) from the enclosing function, if it holds one.
#define CLOISTER_RETURN_IF_ERROR(expr)                          \
  do {                                                          \
    auto cloister_status_ = (expr);                             \
    if (!cloister_status_) return std::move(cloister_status_).error(); \
  } while (0)

// Evaluates `expr` (a Result<T>); on error returns it, else moves the value into `lhs`
// (a declaration such as `auto x` or an existing variable).
#define CLOISTER_ASSIGN_OR_RETURN(lhs, expr) \
  CLOISTER_ASSIGN_OR_RETURN_IMPL_(CLOISTER_CONCAT_(cloister_result_, __LINE__), lhs, expr)
#define CLOISTER_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                    \
  if (!tmp) return std::move(tmp).error();              \
  lhs = std::move(*tmp)

#endif  // CLOISTER_COMMON_RESULT_H_
