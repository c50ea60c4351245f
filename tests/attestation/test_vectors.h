// Helpers shared by the attestation tests: the real AWS vectors in tests/vectors/nitro (their
// README gives each file's source and licence).
#ifndef CLOISTER_TESTS_ATTESTATION_TEST_VECTORS_H_
#define CLOISTER_TESTS_ATTESTATION_TEST_VECTORS_H_

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/bytes.h"
#include "common/clock.h"
#include "common/file.h"

namespace cloister::attestation::testing {

// Returns the vectors directory: $CLOISTER_VECTORS_DIR if set and not empty (an override), else
// the build's CLOISTER_VECTORS_DIR (<source>/tests/vectors, inside the checkout).
inline std::string VectorsDir() {
  if (const char* env = std::getenv("CLOISTER_VECTORS_DIR"); env != nullptr && env[0] != 0) {
    return env;
  }
  return CLOISTER_VECTORS_DIR;
}

inline std::string VectorPath(const std::string& name) { return VectorsDir() + "/nitro/" + name; }

// Returns the raw CBOR of a vector (base64 text decoded for .b64 files); aborts the test binary
// if the vector is missing, since every test here depends on it.
inline Bytes LoadVector(const std::string& name) {
  auto bytes = ReadFile(VectorPath(name));
  if (!bytes) {
    std::fprintf(stderr, "missing test vector %s: %s\n", VectorPath(name).c_str(),
                 bytes.error().ToString().c_str());
    std::abort();
  }
  if (name.size() > 4 && name.substr(name.size() - 4) == ".b64") {
    auto decoded = Base64Decode(AsString(*bytes));
    if (!decoded) std::abort();
    return *decoded;
  }
  return *bytes;
}

inline std::string AwsRootPem() {
  auto pem = ReadTextFile(VectorPath("aws_nitro_enclaves_root_g1.pem"));
  if (!pem) std::abort();
  return *pem;
}

struct RealVector {
  const char* file;
  UnixMillis timestamp;  // the document's own timestamp (README of the vectors)
  const char* module_id;
  bool debug;
};

inline constexpr RealVector kBlockyProd{"blocky_nitrite_nitro_attestation_2024-09-07.b64",
                                        1725719859545, "i-0a22e5c5f24d22174-enc0191cceb4289903f",
                                        false};
inline constexpr RealVector kBlockyDebug{"blocky_nitrite_nitro_attestation_debug_2024-09-07.b64",
                                         1725719886508, "i-0a22e5c5f24d22174-enc0191ccebaf8feaba",
                                         true};
inline constexpr RealVector kAnjunaPublicKey{
    "anjuna_sample_prod_doc_with_publickey_2021-03-24.cbor", 1616602241734,
    "i-0a6d65e7122308898-enc017846bcd2f820da", false};
inline constexpr RealVector kAnjunaProd{"anjuna_sample_prod_doc_2021-03-17.cbor", 1616018515685,
                                        "i-078824548edcf6519-enc01784234ec227b58", false};

}  // namespace cloister::attestation::testing

#endif  // CLOISTER_TESTS_ATTESTATION_TEST_VECTORS_H_
