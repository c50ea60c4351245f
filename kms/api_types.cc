#include "kms/api_types.h"

namespace cloister::kms {

Error KmsError(std::string_view type, std::string_view message) {
  ErrorCode code = ErrorCode::kInvalidArgument;
  if (type == "NotFoundException") code = ErrorCode::kNotFound;
  if (type == "AccessDeniedException") code = ErrorCode::kPolicyDenied;
  if (type == "SerializationException" || type == "UnknownOperationException" ||
      type == "MalformedPolicyDocumentException") {
    code = ErrorCode::kMalformed;
  }
  if (type == "InvalidCiphertextException" || type == "IncorrectKeyException") {
    code = ErrorCode::kVerifyFailed;
  }
  if (type == "KMSInternalException") code = ErrorCode::kInternal;
  return Error(code, std::string(type) + ": " + std::string(message));
}

}  // namespace cloister::kms
