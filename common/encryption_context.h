// The encryption context AWS KMS and the AWS Encryption SDK share: a map of UTF-8 strings,
// ordered by key bytes - equal contexts compare equal whatever order a JSON request gave them in,
// and iteration is the order the ESDK serialises them in (aws-encryption-sdk-specification
// data-format/message-header.md "AAD"). One type for both, so a context passes from a KMS call to
// an ESDK message without conversion.
// Thread safety: a type alias.
#ifndef CLOISTER_COMMON_ENCRYPTION_CONTEXT_H_
#define CLOISTER_COMMON_ENCRYPTION_CONTEXT_H_

#include <map>
#include <string>

namespace cloister {

using EncryptionContext = std::map<std::string, std::string>;

}  // namespace cloister

#endif  // CLOISTER_COMMON_ENCRYPTION_CONTEXT_H_
