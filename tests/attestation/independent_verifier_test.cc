// An independent check of the documents we produce. The verifier below follows the public
// Nitro format description (DESIGN.md "Formats"; aws/aws-nitro-enclaves-nsm-api
// docs/attestation_process.md; RFC 9052 section 4.4) and uses only libcbor and OpenSSL
// directly: no code from attestation/ or common/ parses or verifies here. Production code is
// used only to *produce* documents.
#include <cbor.h>
#include <gtest/gtest.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "attestation/platform_pki.h"
#include "tests/attestation/test_vectors.h"

namespace {

using Buf = std::vector<uint8_t>;

struct ItemFree {
  void operator()(cbor_item_t* i) const { cbor_decref(&i); }
};
using Item = std::unique_ptr<cbor_item_t, ItemFree>;
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using Cert = std::unique_ptr<X509, X509Free>;

Item Load(const uint8_t* data, size_t size) {
  cbor_load_result r{};
  Item item(cbor_load(data, size, &r));
  if (!item || r.error.code != CBOR_ERR_NONE || r.read != size) return nullptr;
  return item;
}

bool IsBytes(const cbor_item_t* i) {
  return cbor_isa_bytestring(i) && cbor_bytestring_is_definite(i);
}
Buf BytesOf(const cbor_item_t* i) {
  return Buf(cbor_bytestring_handle(i), cbor_bytestring_handle(i) + cbor_bytestring_length(i));
}
bool TextIs(const cbor_item_t* i, const char* s) {
  return cbor_isa_string(i) && cbor_string_is_definite(i) &&
         cbor_string_length(i) == std::strlen(s) &&
         std::memcmp(cbor_string_handle(i), s, std::strlen(s)) == 0;
}
Cert CertOf(const Buf& der) {
  const unsigned char* p = der.data();
  return Cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
}

// Returns "" when `doc` is a valid Nitro attestation document chaining to `root_der` at time
// `at` (seconds), else the reason.
std::string IndependentVerify(const Buf& doc, const Buf& root_der, time_t at) {
  Item cose = Load(doc.data(), doc.size());
  if (!cose || !cbor_isa_array(cose.get()) || cbor_array_size(cose.get()) != 4) {
    return "not a 4-element array";
  }
  cbor_item_t** parts = cbor_array_handle(cose.get());
  if (!IsBytes(parts[0]) || BytesOf(parts[0]) != Buf{0xa1, 0x01, 0x38, 0x22}) {
    return "protected header is not {1: -35}";
  }
  if (!cbor_isa_map(parts[1]) || cbor_map_size(parts[1]) != 0) return "unprotected not {}";
  if (!IsBytes(parts[2]) || !IsBytes(parts[3])) return "payload/signature not bytes";
  Buf payload = BytesOf(parts[2]);
  Buf signature = BytesOf(parts[3]);
  if (signature.size() != 96) return "signature not 96 bytes";

  Item map = Load(payload.data(), payload.size());
  if (!map || !cbor_isa_map(map.get()) || !cbor_map_is_definite(map.get()) ||
      cbor_map_size(map.get()) != 9) {
    return "payload is not a definite map of 9";
  }
  static const char* kOrder[] = {"module_id", "digest",     "timestamp", "pcrs", "certificate",
                                 "cabundle",  "public_key", "user_data", "nonce"};
  cbor_pair* f = cbor_map_handle(map.get());
  for (int i = 0; i < 9; ++i) {
    if (!TextIs(f[i].key, kOrder[i]))
      return std::string("field ") + std::to_string(i) + " is not " + kOrder[i];
  }
  if (!cbor_isa_string(f[0].value) || cbor_string_length(f[0].value) == 0) return "module_id";
  if (!TextIs(f[1].value, "SHA384")) return "digest";
  if (!cbor_isa_uint(f[2].value) || cbor_get_int(f[2].value) == 0) return "timestamp";
  if (!cbor_isa_map(f[3].value) || cbor_map_size(f[3].value) == 0 ||
      cbor_map_size(f[3].value) > 32) {
    return "pcrs";
  }
  cbor_pair* pcrs = cbor_map_handle(f[3].value);
  for (size_t i = 0; i < cbor_map_size(f[3].value); ++i) {
    if (!cbor_isa_uint(pcrs[i].key) || cbor_get_int(pcrs[i].key) > 31 || !IsBytes(pcrs[i].value) ||
        cbor_bytestring_length(pcrs[i].value) != 48) {
      return "pcr entry";
    }
  }
  if (!IsBytes(f[4].value)) return "certificate";
  if (!cbor_isa_array(f[5].value) || cbor_array_size(f[5].value) == 0) return "cabundle";
  for (int i = 6; i < 9; ++i) {
    if (!cbor_is_null(f[i].value) &&
        (!IsBytes(f[i].value) || cbor_bytestring_length(f[i].value) > 1024)) {
      return std::string(kOrder[i]) + " not null or bytes <= 1024";
    }
  }

  // Chain: root (cabundle[0], which must be our trusted root) -> ... -> certificate.
  Cert leaf = CertOf(BytesOf(f[4].value));
  if (!leaf) return "leaf does not parse";
  cbor_item_t** bundle = cbor_array_handle(f[5].value);
  if (!IsBytes(bundle[0]) || BytesOf(bundle[0]) != root_der) return "cabundle[0] is not the root";
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  Cert root = CertOf(root_der);
  if (!root || X509_STORE_add_cert(store.get(), root.get()) != 1) return "root";
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> chain(
      sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_pop_free(s, X509_free); });
  for (size_t i = 1; i < cbor_array_size(f[5].value); ++i) {
    if (!IsBytes(bundle[i])) return "cabundle entry";
    Cert c = CertOf(BytesOf(bundle[i]));
    if (!c || sk_X509_push(chain.get(), c.get()) == 0) return "cabundle entry parse";
    c.release();
  }
  std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                      X509_STORE_CTX_free);
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()) != 1) return "ctx";
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, at);
  // Not X509_V_FLAG_X509_STRICT: AWS's own leaf certificates have no authority key identifier.
  if (X509_verify_cert(ctx.get()) != 1) {
    return std::string("chain: ") +
           X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  }

  // Sig_structure = ["Signature1", protected, h'', payload], signed with ES384.
  Item sig_structure(cbor_new_definite_array(4));
  Item context(cbor_build_string("Signature1"));
  Item prot(
      cbor_build_bytestring(cbor_bytestring_handle(parts[0]), cbor_bytestring_length(parts[0])));
  Item aad(cbor_build_bytestring(nullptr, 0));
  Item body(cbor_build_bytestring(payload.data(), payload.size()));
  if (!cbor_array_push(sig_structure.get(), context.get()) ||
      !cbor_array_push(sig_structure.get(), prot.get()) ||
      !cbor_array_push(sig_structure.get(), aad.get()) ||
      !cbor_array_push(sig_structure.get(), body.get())) {
    return "sig_structure";
  }
  unsigned char* tbs = nullptr;
  size_t tbs_cap = 0;
  size_t tbs_len = cbor_serialize_alloc(sig_structure.get(), &tbs, &tbs_cap);
  std::unique_ptr<unsigned char, decltype(&std::free)> tbs_owner(tbs, std::free);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(signature.data(), 48, nullptr),
                 BN_bin2bn(signature.data() + 48, 48, nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> der_owner(
      der, [](unsigned char* p) { OPENSSL_free(p); });
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (der_len <= 0 ||
      EVP_DigestVerifyInit(md.get(), nullptr, EVP_sha384(), nullptr,
                           X509_get0_pubkey(leaf.get())) != 1 ||
      EVP_DigestVerify(md.get(), der, static_cast<size_t>(der_len), tbs, tbs_len) != 1) {
    return "COSE signature";
  }
  return "";
}

Buf ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Buf(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Buf RootDerFromPem(const std::string& path) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_file(path.c_str(), "r"), BIO_free);
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  Buf out(der, der + len);
  OPENSSL_free(der);
  return out;
}

constexpr int64_t kNow = 1767225600000;  // 2026-01-01T00:00:00Z

TEST(IndependentVerifierTest, SanityRealAwsDocumentsPass) {
  std::string dir = cloister::attestation::testing::VectorsDir() + "/nitro/";
  Buf root = RootDerFromPem(dir + "aws_nitro_enclaves_root_g1.pem");
  EXPECT_EQ(
      IndependentVerify(ReadAll(dir + "anjuna_sample_prod_doc_2021-03-17.cbor"), root, 1616018515),
      "");
  EXPECT_EQ(
      IndependentVerify(ReadAll(dir + "anjuna_sample_prod_doc_with_publickey_2021-03-24.cbor"),
                        root, 1616602241),
      "");
  EXPECT_NE(IndependentVerify(ReadAll(dir + "anjuna_sample_prod_doc_2021-03-17.cbor"), root,
                              1616018515 + 86400),
            "");
}

TEST(IndependentVerifierTest, AcceptsOurDocuments) {
  using cloister::attestation::AttestRequest;
  using cloister::attestation::PlatformPki;
  auto pki = PlatformPki::Create(kNow);
  ASSERT_TRUE(pki.has_value());
  const Buf& root = pki->RootCertificateDer();

  std::vector<AttestRequest> requests(4);
  for (uint32_t i = 0; i < 16; ++i) requests[0].pcrs[i] = Buf(48, 0);
  requests[0].module_id = "i-0123456789abcdef0-enc0123456789abcdef";
  requests[1] = requests[0];
  requests[1].public_key = Buf(294, 0x30);
  requests[1].user_data = Buf(1024, 1);
  requests[1].nonce = Buf(1024, 2);
  requests[2] = requests[0];
  requests[2].pcrs[0] = Buf(48, 0xab);
  requests[2].pcrs.erase(15);
  requests[2].user_data = Buf();
  requests[3] = requests[0];
  requests[3].module_id = "i-ffffffffffffffffff-enc" + std::string(40, 'f');
  requests[3].pcrs[16] = Buf(48, 0x16);
  for (size_t i = 0; i < requests.size(); ++i) {
    int64_t at = kNow + static_cast<int64_t>(i) * 1000;
    auto doc = pki->Attest(requests[i], at);
    ASSERT_TRUE(doc.has_value()) << i;
    EXPECT_EQ(IndependentVerify(*doc, root, at / 1000), "") << i;
    EXPECT_EQ(IndependentVerify(*doc, root, at / 1000 + 2 * 3600), "") << i;
    EXPECT_NE(IndependentVerify(*doc, root, at / 1000 + 4 * 3600), "") << i;  // leaf expired
    Buf tampered = *doc;
    tampered[tampered.size() - 1] ^= 1;
    EXPECT_NE(IndependentVerify(tampered, root, at / 1000), "") << i;
  }
  // Another platform's root does not accept them.
  auto other = PlatformPki::Create(kNow);
  EXPECT_NE(
      IndependentVerify(*pki->Attest(requests[0], kNow), other->RootCertificateDer(), kNow / 1000),
      "");
}

}  // namespace
