// Tests of Recipient parsing, attestation condition keys and CiphertextForRecipient envelopes
// (kms/recipient.h). The envelope is decrypted with OpenSSL's own CMS code and compared, byte
// for byte outside its random fields, with a real AWS KMS blob
// (tests/vectors/kms-cms/blob1.der).
#include "kms/recipient.h"

#include <gtest/gtest.h>
#include <openssl/cms.h>
#include <openssl/rsa.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"
#include "tests/kms/recipient_test_keys.h"

namespace cloister::kms {
namespace {


EVP_PKEY* SharedRsa2048() { return testing_keys::TestRsa(2048); }

// The vectors are in the checkout (tests/vectors, CLOISTER_VECTORS_DIR); $CLOISTER_VECTORS_DIR,
// when set and not empty, overrides it.
std::string VectorsDir() {
  const char* env = std::getenv("CLOISTER_VECTORS_DIR");
  return env != nullptr && env[0] != 0 ? env : CLOISTER_VECTORS_DIR;
}

Bytes ReadVector(const std::string& name) {
  auto data = ReadFile(VectorsDir() + "/kms-cms/" + name, 1 << 16);
  EXPECT_TRUE(data.has_value()) << name;
  return data.has_value() ? *data : Bytes{};
}

CmsPtr ParseCms(ByteSpan ber) {
  BioPtr in(BIO_new_mem_buf(ber.data(), static_cast<int>(ber.size())));
  return CmsPtr(d2i_CMS_bio(in.get(), nullptr));
}

// Decrypts with OpenSSL's CMS_decrypt and the private key only (no certificate), as an
// independent implementation of RFC 5652 would.
Result<Bytes> OpensslDecrypt(ByteSpan envelope, EVP_PKEY* private_key) {
  CmsPtr cms = ParseCms(envelope);
  if (cms == nullptr) return OpensslError("d2i_CMS_bio");
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!OsslOk(CMS_decrypt(cms.get(), private_key, nullptr, nullptr, out.get(), CMS_BINARY))) {
    return OpensslError("CMS_decrypt");
  }
  BUF_MEM* mem = nullptr;
  BIO_get_mem_ptr(out.get(), &mem);
  return Bytes(mem->data, mem->data + mem->length);
}

Bytes KeyEncryptionAlgorithmDer(ByteSpan envelope) {
  CmsPtr cms = ParseCms(envelope);
  EXPECT_NE(cms, nullptr);
  if (cms == nullptr) return {};
  STACK_OF(CMS_RecipientInfo)* infos = CMS_get0_RecipientInfos(cms.get());
  EXPECT_EQ(sk_CMS_RecipientInfo_num(infos), 1);
  CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(infos, 0);
  EXPECT_EQ(CMS_RecipientInfo_type(ri), CMS_RECIPINFO_TRANS);
  X509_ALGOR* alg = nullptr;
  EXPECT_EQ(CMS_RecipientInfo_ktri_get0_algs(ri, nullptr, nullptr, &alg), 1);
  unsigned char* der = nullptr;
  const int len = i2d_X509_ALGOR(alg, &der);
  Bytes out(der, der + std::max(len, 0));
  OPENSSL_free(der);
  return out;
}

TEST(EnvelopeForRecipientTest, DecryptsWithOpensslCms) {
  for (size_t size : {0u, 1u, 15u, 16u, 32u, 1000u, 4096u}) {
    Bytes plaintext(size);
    for (size_t i = 0; i < size; ++i) plaintext[i] = static_cast<uint8_t>(i * 7 + 1);
    auto envelope = EnvelopeForRecipient(plaintext, SharedRsa2048());
    ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();
    auto decrypted = OpensslDecrypt(*envelope, SharedRsa2048());
    ASSERT_TRUE(decrypted.has_value()) << decrypted.error().ToString();
    EXPECT_EQ(*decrypted, plaintext) << "size " << size;
  }
}

TEST(EnvelopeForRecipientTest, DecryptsWithRsa4096) {
  EVP_PKEY* key = testing_keys::TestRsa(4096);
  ASSERT_NE(key, nullptr);
  const Bytes plaintext = ToBytes("a 32-byte data key, more or less");
  auto envelope = EnvelopeForRecipient(plaintext, key);
  ASSERT_TRUE(envelope.has_value()) << envelope.error().ToString();
  auto decrypted = OpensslDecrypt(*envelope, key);
  ASSERT_TRUE(decrypted.has_value()) << decrypted.error().ToString();
  EXPECT_EQ(*decrypted, plaintext);
}

TEST(EnvelopeForRecipientTest, OtherKeyCannotDecrypt) {
  const Bytes secret = ToBytes("secret");
  auto envelope = EnvelopeForRecipient(secret, SharedRsa2048());
  ASSERT_TRUE(envelope.has_value());
  // With the wrong key, CMS_decrypt (against the Bleichenbacher/MMA attack) decrypts the content
  // under a random key instead of failing at the key transport; the CBC padding of that garbage
  // is valid about one time in 256. So: an error, or anything but the plaintext.
  auto decrypted = OpensslDecrypt(*envelope, testing_keys::TestRsa(4096));
  EXPECT_TRUE(!decrypted.has_value() || *decrypted != secret);
}

// The prepared-key cache is keyed by key object: alternating keys, and more key objects than
// it holds (each a separate EVP_PKEY parsed from the same SubjectPublicKeyInfo), must always
// encrypt to the key passed.
TEST(EnvelopeForRecipientTest, PreparedKeyCacheNeverMixesKeys) {
  const Bytes plaintext = ToBytes("data key");
  for (int round = 0; round < 3; ++round) {
    for (unsigned bits : {2048u, 4096u}) {
      auto envelope = EnvelopeForRecipient(plaintext, testing_keys::TestRsa(bits));
      ASSERT_TRUE(envelope.has_value());
      auto decrypted = OpensslDecrypt(*envelope, testing_keys::TestRsa(bits));
      ASSERT_TRUE(decrypted.has_value()) << bits << ": " << decrypted.error().ToString();
      EXPECT_EQ(*decrypted, plaintext);
    }
  }
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(SharedRsa2048(), &der);
  ASSERT_GT(len, 0);
  const Bytes spki(der, der + len);
  OPENSSL_free(der);
  for (size_t i = 0; i < kRecipientKeyCacheEntries + 8; ++i) {
    const unsigned char* p = spki.data();
    EvpPkeyPtr copy(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    ASSERT_NE(copy, nullptr);
    auto envelope = EnvelopeForRecipient(plaintext, copy.get());
    ASSERT_TRUE(envelope.has_value());
    if (i % 37 == 0) {
      auto decrypted = OpensslDecrypt(*envelope, SharedRsa2048());
      ASSERT_TRUE(decrypted.has_value()) << i;
      EXPECT_EQ(*decrypted, plaintext);
    }
  }
}

TEST(EnvelopeForRecipientTest, FreshKeyAndIvEachTime) {
  const Bytes plaintext(32, 0x42);
  auto a = EnvelopeForRecipient(plaintext, SharedRsa2048());
  auto b = EnvelopeForRecipient(plaintext, SharedRsa2048());
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(*a, *b);
}

// The blob AWS KMS returned (blob1.der) wraps a 32-byte data key for an RSA-2048 key: a
// 32-byte plaintext to an RSA-2048 key must give the same bytes except the random or
// key-dependent fields (offsets from `openssl asn1parse`, see the vectors' README).
TEST(EnvelopeForRecipientTest, SameBytesAsAwsBlobOutsideRandomFields) {
  const Bytes aws = ReadVector("blob1.der");
  ASSERT_EQ(aws.size(), 493u);
  auto ours = EnvelopeForRecipient(Bytes(32, 0x5a), SharedRsa2048());
  ASSERT_TRUE(ours.has_value());
  ASSERT_EQ(ours->size(), aws.size()) << HexEncode(*ours);
  struct Range {
    size_t begin, end;
    const char* what;
  };
  const Range variable[] = {{33, 65, "subjectKeyIdentifier"},
                            {131, 387, "encryptedKey"},
                            {415, 431, "IV"},
                            {435, 483, "encryptedContent"}};
  size_t at = 0;
  for (const Range& r : variable) {
    EXPECT_EQ(HexEncode(ByteSpan(*ours).subspan(at, r.begin - at)),
              HexEncode(ByteSpan(aws).subspan(at, r.begin - at)))
        << "bytes " << at << ".." << r.begin << " before " << r.what;
    at = r.end;
  }
  EXPECT_EQ(HexEncode(ByteSpan(*ours).subspan(at)), HexEncode(ByteSpan(aws).subspan(at)));
  // Both use indefinite lengths from the top (BER, 30 80 ...).
  EXPECT_EQ((*ours)[0], 0x30);
  EXPECT_EQ((*ours)[1], 0x80);
}

TEST(EnvelopeForRecipientTest, OaepParametersEqualAws) {
  const Bytes aws = ReadVector("blob1.der");
  auto ours = EnvelopeForRecipient(ToBytes("k"), SharedRsa2048());
  ASSERT_TRUE(ours.has_value());
  const Bytes aws_alg = KeyEncryptionAlgorithmDer(aws);
  ASSERT_FALSE(aws_alg.empty());
  EXPECT_EQ(HexEncode(KeyEncryptionAlgorithmDer(*ours)), HexEncode(aws_alg));
  // blob2 (primitive encryptedContent) uses the same parameters.
  EXPECT_EQ(HexEncode(KeyEncryptionAlgorithmDer(ReadVector("blob2.der"))), HexEncode(aws_alg));
}

TEST(EnvelopeForRecipientTest, RidIsSha256OfSubjectPublicKeyInfo) {
  auto ours = EnvelopeForRecipient(ToBytes("k"), SharedRsa2048());
  ASSERT_TRUE(ours.has_value());
  CmsPtr cms = ParseCms(*ours);
  ASSERT_NE(cms, nullptr);
  CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(CMS_get0_RecipientInfos(cms.get()), 0);
  ASN1_OCTET_STRING* keyid = nullptr;
  X509_NAME* issuer = nullptr;
  ASN1_INTEGER* serial = nullptr;
  ASSERT_EQ(CMS_RecipientInfo_ktri_get0_signer_id(ri, &keyid, &issuer, &serial), 1);
  ASSERT_NE(keyid, nullptr);
  auto expected = RecipientKeyIdentifier(SharedRsa2048());
  ASSERT_TRUE(expected.has_value());
  EXPECT_EQ(HexEncode(ByteSpan(ASN1_STRING_get0_data(keyid),
                               static_cast<size_t>(ASN1_STRING_length(keyid)))),
            HexEncode(*expected));
  EXPECT_EQ(expected->size(), 32u);
}

TEST(EnvelopeForRecipientTest, RefusesWrongKeys) {
  EXPECT_EQ(EnvelopeForRecipient(ToBytes("k"), nullptr).error().code(),
            ErrorCode::kInvalidArgument);
  EvpPkeyPtr ec(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(ec, nullptr);
  auto r = EnvelopeForRecipient(ToBytes("k"), ec.get());
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.error().message().find("not an RSA key"), std::string::npos);
  r = EnvelopeForRecipient(ToBytes("k"), testing_keys::TestRsa(1024));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("1024 bits"), std::string::npos);
}

// --- ParseRecipient ------------------------------------------------------------------------

struct RecipientRow {
  std::string name;
  std::string json;
  bool ok;
  std::string message_contains;
};

void PrintTo(const RecipientRow& row, std::ostream* os) { *os << row.name; }

class ParseRecipientTest : public testing::TestWithParam<RecipientRow> {};

TEST_P(ParseRecipientTest, Parses) {
  const RecipientRow& row = GetParam();
  auto recipient = ParseRecipient(nlohmann::json::parse(row.json));
  ASSERT_EQ(recipient.has_value(), row.ok)
      << (recipient ? std::string("ok") : recipient.error().ToString());
  if (row.ok) {
    EXPECT_EQ(recipient->attestation_document, ToBytes("doc"));
    EXPECT_EQ(recipient->key_encryption_algorithm, "RSAES_OAEP_SHA_256");
  } else {
    EXPECT_EQ(recipient.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(recipient.error().message().find(row.message_contains), std::string::npos)
        << recipient.error().message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ParseRecipientTest,
    testing::ValuesIn(std::vector<RecipientRow>{
        {"Full", R"({"AttestationDocument": "ZG9j", "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"})",
         true, ""},
        {"AlgorithmDefaults", R"({"AttestationDocument": "ZG9j"})", true, ""},
        {"NotObject", R"("ZG9j")", false, "must be an object"},
        {"NoDocument", R"({"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"})", false, "missing"},
        {"DocumentNotString", R"({"AttestationDocument": 5})", false, "base64 string"},
        {"DocumentBadBase64", R"({"AttestationDocument": "Z(9j"})", false, "not valid base64"},
        {"DocumentEmpty", R"({"AttestationDocument": ""})", false, "1 to 262144"},
        // Regression (found by fuzz.kms_recipient): blank text used to reach Base64Decode,
        // which passes libsodium a null buffer for it.
        {"DocumentBlank", R"({"AttestationDocument": " \n "})", false, "1 to 262144"},
        {"WrongAlgorithm",
         R"({"AttestationDocument": "ZG9j", "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_1"})", false,
         "RSAES_OAEP_SHA_256"},
        {"UnknownMember", R"({"AttestationDocument": "ZG9j", "Extra": 1})", false,
         "unknown member"},
    }),
    [](const testing::TestParamInfo<RecipientRow>& info) { return info.param.name; });

TEST(ParseRecipientTest, RefusesOversizeDocument) {
  const std::string big = Base64Encode(Bytes(kMaxAttestationDocumentBytes + 1, 1));
  auto r = ParseRecipient(nlohmann::json{{"AttestationDocument", big}});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  auto ok = ParseRecipient(
      nlohmann::json{{"AttestationDocument", Base64Encode(Bytes(kMaxAttestationDocumentBytes, 1))}});
  EXPECT_TRUE(ok.has_value());
}

// --- Condition keys ------------------------------------------------------------------------

TEST(AddRecipientConditionKeysTest, AddsLowerHexPcrsAndImageSha) {
  RecipientInfo info;
  info.pcrs[0] = Bytes(48, 0xAB);
  info.pcrs[1] = Bytes(48, 0x01);
  info.pcrs[31] = Bytes(48, 0xFF);
  RequestContext ctx;
  AddRecipientConditionKeys(info, ctx);
  ASSERT_NE(ctx.Find("kms:recipientattestation:imagesha384"), nullptr);
  EXPECT_EQ(*ctx.Find("kms:recipientattestation:imagesha384"),
            std::vector<std::string>{HexEncode(Bytes(48, 0xAB))});
  ASSERT_NE(ctx.Find("kms:recipientattestation:pcr0"), nullptr);
  EXPECT_EQ(ctx.Find("kms:recipientattestation:pcr0")->at(0), HexEncode(Bytes(48, 0xAB)));
  ASSERT_NE(ctx.Find("kms:recipientattestation:pcr31"), nullptr);
  EXPECT_EQ(ctx.Find("kms:recipientattestation:pcr31")->at(0), std::string(96, 'f'));
  EXPECT_EQ(ctx.Find("kms:recipientattestation:pcr2"), nullptr);
  // Values in the request's own map come first.
  ctx.condition_values["kms:recipientattestation:pcr1"] = {"override"};
  EXPECT_EQ(ctx.Find("kms:recipientattestation:pcr1")->at(0), "override");
}

}  // namespace
}  // namespace cloister::kms
