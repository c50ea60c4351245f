// Fuzz target for the key-policy parser (kms/policy.h): Parse must refuse or accept without
// crashing, and an accepted policy must evaluate any request without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kms/policy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cloister::kms::MakeRequestContext;
  using cloister::kms::Policy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = Policy::Parse(text);
  if (!policy) return 0;
  auto request = MakeRequestContext("arn:aws:iam::111122223333:role/operator", "kms:Decrypt",
                                    "arn:aws:kms:us-east-1:111122223333:key/k");
  (void)policy->Evaluate(request);
  cloister::kms::AddEncryptionContextConditionKeys({{"party", "alice"}, {"x", "y"}}, request);
  request.condition_values["kms:recipientattestation:pcr0"] = {std::string(96, '0')};
  request.condition_values["kms:recipientattestation:imagesha384"] = {std::string(96, 'a')};
  request.condition_values["aws:securetransport"] = {"true"};
  (void)policy->Evaluate(request);
  return 0;
}
