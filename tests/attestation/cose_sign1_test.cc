#include "attestation/cose_sign1.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/cbor.h"
#include "common/ossl.h"
#include "tests/attestation/test_vectors.h"

namespace cloister::attestation {
namespace {

EvpPkeyPtr NewKey(const char* curve = "P-384") { return EvpPkeyPtr(EVP_EC_gen(curve)); }

TEST(CoseSign1Test, SignThenVerify) {
  EvpPkeyPtr key = NewKey();
  Bytes payload = ToBytes("payload");
  auto message = SignCoseSign1Es384(payload, key.get());
  ASSERT_TRUE(message.has_value()) << message.error().ToString();
  // Untagged array of 4, protected {1: -35} in a 4-byte bstr, empty unprotected map: the same
  // first bytes as the NSM's documents (tests/vectors/nitro/README.md).
  ASSERT_GE(message->size(), 7u);
  EXPECT_EQ(HexEncode(ByteSpan(*message).first(7)), "8444a1013822a0");
  auto decoded = DecodeCoseSign1(*message);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->payload, payload);
  EXPECT_EQ(decoded->signature.size(), 96u);
  EXPECT_TRUE(VerifyCoseSign1Es384(*decoded, key.get()).has_value());
  EvpPkeyPtr other = NewKey();
  EXPECT_EQ(VerifyCoseSign1Es384(*decoded, other.get()).error().code(), ErrorCode::kVerifyFailed);
  decoded->payload[0] ^= 1;
  EXPECT_EQ(VerifyCoseSign1Es384(*decoded, key.get()).error().code(), ErrorCode::kVerifyFailed);
}

TEST(CoseSign1Test, SigStructureIsRfc9052Shape) {
  auto sig = CoseSign1SigStructure(Bytes{0xa1, 0x01, 0x38, 0x22}, ToBytes("p"));
  ASSERT_TRUE(sig.has_value());
  // ["Signature1", h'a1013822', h'', h'70']
  EXPECT_EQ(HexEncode(*sig),
            "846a5369676e61747572653144a101382240"
            "4170");
}

TEST(CoseSign1Test, RefusesWrongKeys) {
  EvpPkeyPtr p256 = NewKey("P-256");
  EXPECT_EQ(SignCoseSign1Es384(ToBytes("x"), p256.get()).error().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_FALSE(SignCoseSign1Es384(ToBytes("x"), nullptr).has_value());
  EvpPkeyPtr key = NewKey();
  EXPECT_FALSE(SignCoseSign1Es384({}, key.get()).has_value());
  EXPECT_FALSE(SignCoseSign1Es384(Bytes(kMaxCosePayloadLength + 1), key.get()).has_value());
  auto message = SignCoseSign1Es384(ToBytes("x"), key.get());
  auto decoded = DecodeCoseSign1(*message);
  EXPECT_EQ(VerifyCoseSign1Es384(*decoded, p256.get()).error().code(), ErrorCode::kVerifyFailed);
}

// Builds a COSE_Sign1-like array from parts for the failing-case table.
struct Parts {
  CborPtr protected_header = CborBytes(Bytes{0xa1, 0x01, 0x38, 0x22});
  CborPtr unprotected = CborPtr(cbor_new_definite_map(0));
  CborPtr payload = CborBytes(ToBytes("payload"));
  CborPtr signature = CborBytes(Bytes(96, 1));
  size_t extra = 0;
  bool drop_signature = false;

  Bytes Encode() {
    size_t n = (drop_signature ? 3 : 4) + extra;
    CborPtr array(cbor_new_definite_array(n));
    EXPECT_TRUE(CborArrayPush(array.get(), std::move(protected_header)));
    EXPECT_TRUE(CborArrayPush(array.get(), std::move(unprotected)));
    EXPECT_TRUE(CborArrayPush(array.get(), std::move(payload)));
    if (!drop_signature) {
      EXPECT_TRUE(CborArrayPush(array.get(), std::move(signature)));
    }
    for (size_t i = 0; i < extra; ++i) EXPECT_TRUE(CborArrayPush(array.get(), CborNull()));
    return *EncodeCbor(array.get());
  }
};

Bytes Header(std::function<void(cbor_item_t*)> fill, size_t n) {
  CborPtr map(cbor_new_definite_map(n));
  fill(map.get());
  return *EncodeCbor(map.get());
}

TEST(CoseSign1Test, DecoderAcceptsTheValidShapes) {
  Bytes plain = Parts().Encode();
  EXPECT_TRUE(DecodeCoseSign1(plain).has_value());
  Bytes short_tag = plain;
  short_tag.insert(short_tag.begin(), 0xd2);
  EXPECT_TRUE(DecodeCoseSign1(short_tag).has_value());
  Bytes long_tag = plain;
  long_tag.insert(long_tag.begin(), {0xd8, 0x12});
  EXPECT_TRUE(DecodeCoseSign1(long_tag).has_value());
}

TEST(CoseSign1Test, DecoderRejectsEveryFailingCase) {
  struct Case {
    const char* name;
    std::function<Bytes()> make;
  };
  std::vector<Case> cases = {
      {"empty", [] { return Bytes(); }},
      {"trailing_bytes",
       [] {
         Bytes b = Parts().Encode();
         b.push_back(0xf6);
         return b;
       }},
      {"truncated",
       [] {
         Bytes b = Parts().Encode();
         b.pop_back();
         return b;
       }},
      {"tag_19",
       [] {
         Bytes b = Parts().Encode();
         b.insert(b.begin(), {0xd8, 0x13});
         return b;
       }},
      {"tag_98_cose_sign",
       [] {
         Bytes b = Parts().Encode();
         b.insert(b.begin(), {0xd8, 0x62});
         return b;
       }},
      {"double_tag",
       [] {
         Bytes b = Parts().Encode();
         b.insert(b.begin(), {0xd2, 0xd8, 0x12});
         return b;
       }},
      {"tag_18_twice",
       [] {
         Bytes b = Parts().Encode();
         b.insert(b.begin(), {0xd2, 0xd2});
         return b;
       }},
      {"three_elements",
       [] {
         Parts p;
         p.drop_signature = true;
         return p.Encode();
       }},
      {"five_elements",
       [] {
         Parts p;
         p.extra = 1;
         return p.Encode();
       }},
      {"map_instead_of_array", [] { return *EncodeCbor(CborPtr(cbor_new_definite_map(0)).get()); }},
      {"protected_not_bstr",
       [] {
         Parts p;
         p.protected_header = CborPtr(cbor_new_definite_map(0));
         return p.Encode();
       }},
      {"protected_empty",
       [] {
         Parts p;
         p.protected_header = CborBytes({});
         return p.Encode();
       }},
      {"protected_es256",
       [] {
         Parts p;
         p.protected_header = CborBytes(Header(
             [](cbor_item_t* m) {
               EXPECT_TRUE(CborMapAdd(m, CborUint(1), CborPtr(cbor_build_negint8(6))));
             },
             1));
         return p.Encode();
       }},
      {"protected_extra_header",
       [] {
         Parts p;
         p.protected_header = CborBytes(Header(
             [](cbor_item_t* m) {
               EXPECT_TRUE(CborMapAdd(m, CborUint(1), CborPtr(cbor_build_negint8(34))));
               EXPECT_TRUE(CborMapAdd(m, CborUint(4), CborBytes(ToBytes("kid"))));
             },
             2));
         return p.Encode();
       }},
      {"protected_text_label",
       [] {
         Parts p;
         p.protected_header = CborBytes(Header(
             [](cbor_item_t* m) {
               EXPECT_TRUE(CborMapAdd(m, CborText("alg"), CborPtr(cbor_build_negint8(34))));
             },
             1));
         return p.Encode();
       }},
      {"protected_trailing",
       [] {
         Parts p;
         p.protected_header = CborBytes(Bytes{0xa1, 0x01, 0x38, 0x22, 0x00});
         return p.Encode();
       }},
      {"protected_garbage",
       [] {
         Parts p;
         p.protected_header = CborBytes(Bytes{0xff});
         return p.Encode();
       }},
      {"unprotected_not_empty",
       [] {
         Parts p;
         p.unprotected = CborPtr(cbor_new_definite_map(1));
         EXPECT_TRUE(CborMapAdd(p.unprotected.get(), CborUint(4), CborBytes(ToBytes("k"))));
         return p.Encode();
       }},
      {"unprotected_not_map",
       [] {
         Parts p;
         p.unprotected = CborNull();
         return p.Encode();
       }},
      {"payload_null",
       [] {
         Parts p;
         p.payload = CborNull();
         return p.Encode();
       }},
      {"payload_empty",
       [] {
         Parts p;
         p.payload = CborBytes({});
         return p.Encode();
       }},
      {"payload_text",
       [] {
         Parts p;
         p.payload = CborText("payload");
         return p.Encode();
       }},
      {"payload_too_large",
       [] {
         Parts p;
         p.payload = CborBytes(Bytes(kMaxCosePayloadLength + 1));
         return p.Encode();
       }},
      {"signature_64",
       [] {
         Parts p;
         p.signature = CborBytes(Bytes(64, 1));
         return p.Encode();
       }},
      {"signature_97",
       [] {
         Parts p;
         p.signature = CborBytes(Bytes(97, 1));
         return p.Encode();
       }},
      {"signature_text",
       [] {
         Parts p;
         p.signature = CborText(std::string(96, 'a'));
         return p.Encode();
       }},
      {"oversize_input", [] { return Bytes(kMaxCoseSign1Length + 1, 0x40); }},
  };
  for (const Case& c : cases) {
    auto decoded = DecodeCoseSign1(c.make());
    EXPECT_FALSE(decoded.has_value()) << c.name;
    if (!decoded) {
      EXPECT_EQ(decoded.error().code(), ErrorCode::kMalformed) << c.name;
    }
  }
}

TEST(CoseSign1Test, RealVectorsDecode) {
  for (const char* file : {testing::kBlockyProd.file, testing::kAnjunaProd.file}) {
    auto decoded = DecodeCoseSign1(testing::LoadVector(file));
    ASSERT_TRUE(decoded.has_value()) << file;
    EXPECT_EQ(HexEncode(decoded->protected_header), "a1013822");
  }
}

}  // namespace
}  // namespace cloister::attestation
