// Fuzz target: the COSE_Sign1 decoder, and signature verification of whatever decodes.
#include <cstddef>
#include <cstdint>

#include "attestation/cose_sign1.h"
#include "common/ossl.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static cloister::EvpPkeyPtr key(EVP_EC_gen("P-384"));
  auto decoded = cloister::attestation::DecodeCoseSign1({data, size});
  if (decoded) {
    (void)cloister::attestation::VerifyCoseSign1Es384(*decoded, key.get());
    (void)cloister::attestation::CoseSign1SigStructure(decoded->protected_header, decoded->payload);
  }
  return 0;
}
