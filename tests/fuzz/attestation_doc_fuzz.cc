// Fuzz target: the attestation document parser (whole COSE document and bare payload), and the
// Verifier on whatever parses, anchored on the real AWS root so mutated real documents reach
// the chain and signature checks.
#include <cstddef>
#include <cstdint>
#include <string>

#include "attestation/attestation_doc.h"
#include "attestation/verifier.h"

namespace {

// aws_nitro_enclaves_root_g1.pem (tests/vectors/nitro/README.md; AWS's published root).
constexpr char kAwsRootPem[] = R"(-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
)";

// The root of the emulated platform that produced corpus/attestation_doc/ours_*.cbor, so those
// documents and their mutations reach the chain and signature checks too.
constexpr char kCorpusPlatformRootPem[] = R"(-----BEGIN CERTIFICATE-----
MIICWDCCAd2gAwIBAgIQLYZIF33Wmlk++r5ScXutSTAKBggqhkjOPQQDAzBsMQsw
CQYDVQQGEwJVUzERMA8GA1UECgwIQ2xvaXN0ZXIxFzAVBgNVBAsMDkVtdWxhdGVk
IE5pdHJvMTEwLwYDVQQDDCg2MmQxYjRmZjU5MjRhNmE4LmNsb2lzdGVyLm5pdHJv
LWVuY2xhdmVzMCAXDTI2MTEyMTIzNTkxN1oYDzIwNTYxMTEzMjM1OTE3WjBsMQsw
CQYDVQQGEwJVUzERMA8GA1UECgwIQ2xvaXN0ZXIxFzAVBgNVBAsMDkVtdWxhdGVk
IE5pdHJvMTEwLwYDVQQDDCg2MmQxYjRmZjU5MjRhNmE4LmNsb2lzdGVyLm5pdHJv
LWVuY2xhdmVzMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEXaPiG8+vbNXNBbI9MHAl
IgIu2+ViGGuy2U094qEQf8WSB38Yyx8YVkAFqqas2dNTveW3UttW83rroEqqunKr
K+V1kW6clhpe04RBpspW+3NoArR2AsE5x+Wvuks+8GY2o0IwQDAPBgNVHRMBAf8E
BTADAQH/MA4GA1UdDwEB/wQEAwIBhjAdBgNVHQ4EFgQUs+/N2Y1PkW3lHHdsgKjN
uCnJCQwwCgYIKoZIzj0EAwMDaQAwZgIxANpg8k5gpoD1XT0Wrfu2QSMvuUpkJJao
wmd6yS7juGiIFwQFuRC6CbDBO01gmVd9kAIxAMp57wmhemB548oNM/fNC339xSZH
/xyPCckBuDxXIWV3ewpSRnaWqtKRvmIxMlCuaQ==
-----END CERTIFICATE-----
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloister::attestation;
  static const Verifier* verifier = [] {
    auto anchors = TrustAnchors::FromPem(std::string(kAwsRootPem) + kCorpusPlatformRootPem);
    if (!anchors) __builtin_trap();
    return new Verifier(*anchors, 64);
  }();
  cloister::ByteSpan input(data, size);
  (void)ParseAttestationPayload(input);
  auto parsed = ParseAttestationDocument(input);
  if (parsed) {
    auto encoded = EncodeAttestationPayload(parsed->doc);
    if (!encoded) __builtin_trap();  // whatever parses must encode
    auto reparsed = ParseAttestationPayload(*encoded);
    if (!reparsed || !(*reparsed == parsed->doc)) __builtin_trap();
    VerifyOptions options;
    options.now = parsed->doc.timestamp;
    options.allow_debug = true;
    (void)verifier->Verify(input, options);
  }
  return 0;
}
