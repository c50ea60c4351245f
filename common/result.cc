#include "common/result.h"

#include <cstring>

namespace cloister {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformed: return "malformed";
    case ErrorCode::kVerifyFailed: return "verify_failed";
    case ErrorCode::kPolicyDenied: return "policy_denied";
    case ErrorCode::kNotFound: return "not_found";
    case ErrorCode::kIo: return "io";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
  }
  return "unknown";
}

ErrorCode ErrorCodeFromName(std::string_view name) {
  for (ErrorCode code : {ErrorCode::kMalformed, ErrorCode::kVerifyFailed, ErrorCode::kPolicyDenied,
                         ErrorCode::kNotFound, ErrorCode::kIo, ErrorCode::kUnavailable,
                         ErrorCode::kInvalidArgument}) {
    if (ErrorCodeName(code) == name) return code;
  }
  return ErrorCode::kInternal;
}

Error Error::FromErrno(std::string_view what, int errno_value) {
  char buf[256];
  // GNU strerror_r returns the message pointer, which may or may not be `buf`.
  const char* msg = strerror_r(errno_value, buf, sizeof(buf));
  return Error(ErrorCode::kIo, std::string(what) + ": " + msg);
}

Error Error::WithContext(std::string_view context) const {
  return Error(code_, std::string(context) + ": " + message_);
}

std::string Error::ToString() const {
  return std::string(ErrorCodeName(code_)) + ": " + message_;
}

}  // namespace cloister
