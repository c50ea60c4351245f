#include "attestation/attestation_doc.h"

#include <gtest/gtest.h>

#include <functional>

#include "common/cbor.h"
#include "tests/attestation/test_vectors.h"

namespace cloister::attestation {
namespace {

using testing::kAnjunaProd;
using testing::kAnjunaPublicKey;
using testing::kBlockyDebug;
using testing::kBlockyProd;
using testing::LoadVector;

// A payload under construction: ordered (key, value) pairs, turned into a CBOR map at the end.
using Pairs = std::vector<std::pair<CborPtr, CborPtr>>;

CborPtr Text(std::string_view s) { return CborText(s); }

CborPtr PcrMap(size_t count, size_t length, uint64_t first_index = 0) {
  CborPtr map(cbor_new_definite_map(count));
  for (size_t i = 0; i < count; ++i) {
    EXPECT_TRUE(CborMapAdd(map.get(), CborUint(first_index + i), CborBytes(Bytes(length, 1))));
  }
  return map;
}

CborPtr BytesArray(size_t count, size_t length) {
  CborPtr array(cbor_new_definite_array(count));
  for (size_t i = 0; i < count; ++i) {
    EXPECT_TRUE(CborArrayPush(array.get(), CborBytes(Bytes(length, 0x30))));
  }
  return array;
}

Pairs BasePairs() {
  Pairs p;
  p.emplace_back(Text("module_id"), Text("i-0123456789abcdef0-enc0123456789abcdef"));
  p.emplace_back(Text("digest"), Text("SHA384"));
  p.emplace_back(Text("timestamp"), CborUint(1725719859545));
  p.emplace_back(Text("pcrs"), PcrMap(16, 48));
  p.emplace_back(Text("certificate"), CborBytes(Bytes(600, 0x30)));
  p.emplace_back(Text("cabundle"), BytesArray(4, 600));
  p.emplace_back(Text("public_key"), CborNull());
  p.emplace_back(Text("user_data"), CborBytes(Bytes(10, 7)));
  p.emplace_back(Text("nonce"), CborNull());
  return p;
}

Bytes Encode(Pairs& pairs, bool indefinite = false) {
  CborPtr map(indefinite ? cbor_new_indefinite_map() : cbor_new_definite_map(pairs.size()));
  for (auto& [k, v] : pairs) EXPECT_TRUE(CborMapAdd(map.get(), std::move(k), std::move(v)));
  return *EncodeCbor(map.get());
}

void Set(Pairs& p, std::string_view key, CborPtr value) {
  for (auto& [k, v] : p) {
    if (cbor_isa_string(k.get()) &&
        std::string_view(reinterpret_cast<const char*>(cbor_string_handle(k.get())),
                         cbor_string_length(k.get())) == key) {
      v = std::move(value);
      return;
    }
  }
  ADD_FAILURE() << "no key " << key;
}

void Remove(Pairs& p, std::string_view key) {
  for (auto it = p.begin(); it != p.end(); ++it) {
    const cbor_item_t* k = it->first.get();
    if (std::string_view(reinterpret_cast<const char*>(cbor_string_handle(k)),
                         cbor_string_length(k)) == key) {
      p.erase(it);
      return;
    }
  }
}

TEST(AttestationDocTest, BaseCaseParses) {
  Pairs p = BasePairs();
  auto doc = ParseAttestationPayload(Encode(p));
  ASSERT_TRUE(doc.has_value()) << doc.error().ToString();
  EXPECT_EQ(doc->pcrs.size(), 16u);
  EXPECT_EQ(doc->cabundle.size(), 4u);
  EXPECT_FALSE(doc->public_key.has_value());
  EXPECT_EQ(doc->user_data, Bytes(10, 7));
}

TEST(AttestationDocTest, AcceptsIndefiniteMapsAnyOrderAndAbsentOptionals) {
  Pairs p = BasePairs();
  EXPECT_TRUE(ParseAttestationPayload(Encode(p, /*indefinite=*/true)).has_value());
  Pairs reversed = BasePairs();
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_TRUE(ParseAttestationPayload(Encode(reversed)).has_value());
  Pairs without = BasePairs();
  Remove(without, "public_key");
  Remove(without, "user_data");
  Remove(without, "nonce");
  auto doc = ParseAttestationPayload(Encode(without));
  ASSERT_TRUE(doc.has_value());
  EXPECT_FALSE(doc->user_data.has_value());
  Pairs indef_pcrs = BasePairs();
  CborPtr pcrs(cbor_new_indefinite_map());
  ASSERT_TRUE(CborMapAdd(pcrs.get(), CborUint(0), CborBytes(Bytes(48, 0))));
  Set(indef_pcrs, "pcrs", std::move(pcrs));
  EXPECT_TRUE(ParseAttestationPayload(Encode(indef_pcrs)).has_value());
  Pairs limits = BasePairs();
  Set(limits, "user_data", CborBytes(Bytes(1024, 1)));
  Set(limits, "nonce", CborBytes(Bytes()));
  Set(limits, "public_key", CborBytes(Bytes(1024, 1)));
  Set(limits, "pcrs", PcrMap(32, 48));
  Set(limits, "cabundle", BytesArray(8, 1024));
  Set(limits, "certificate", CborBytes(Bytes(1024, 1)));
  EXPECT_TRUE(ParseAttestationPayload(Encode(limits)).has_value());
}

struct FailingCase {
  const char* name;
  std::function<Bytes()> make;
};

Bytes With(std::string_view key, CborPtr value) {
  Pairs p = BasePairs();
  Set(p, key, std::move(value));
  return Encode(p);
}

Bytes Without(std::string_view key) {
  Pairs p = BasePairs();
  Remove(p, key);
  return Encode(p);
}

std::vector<FailingCase> FailingCases() {
  return {
      {"trailing_bytes",
       [] {
         Pairs p = BasePairs();
         Bytes b = Encode(p);
         b.push_back(0);
         return b;
       }},
      {"truncated",
       [] {
         Pairs p = BasePairs();
         Bytes b = Encode(p);
         b.pop_back();
         return b;
       }},
      {"empty", [] { return Bytes(); }},
      {"not_a_map", [] { return *EncodeCbor(BytesArray(2, 3).get()); }},
      {"duplicate_key",
       [] {
         Pairs p = BasePairs();
         p.emplace_back(Text("module_id"), Text("i-other"));
         return Encode(p);
       }},
      {"duplicate_optional_key",
       [] {
         Pairs p = BasePairs();
         p.emplace_back(Text("nonce"), CborNull());
         return Encode(p);
       }},
      {"unknown_key",
       [] {
         Pairs p = BasePairs();
         p.emplace_back(Text("extra"), CborNull());
         return Encode(p);
       }},
      {"unknown_key_replacing",
       [] {
         Pairs p = BasePairs();
         Remove(p, "nonce");
         p.emplace_back(Text("Nonce"), CborNull());
         return Encode(p);
       }},
      {"integer_key",
       [] {
         Pairs p = BasePairs();
         p.emplace_back(CborUint(1), CborNull());
         return Encode(p);
       }},
      {"missing_module_id", [] { return Without("module_id"); }},
      {"missing_digest", [] { return Without("digest"); }},
      {"missing_timestamp", [] { return Without("timestamp"); }},
      {"missing_pcrs", [] { return Without("pcrs"); }},
      {"missing_certificate", [] { return Without("certificate"); }},
      {"missing_cabundle", [] { return Without("cabundle"); }},
      {"module_id_bytes", [] { return With("module_id", CborBytes(Bytes(4, 'a'))); }},
      {"module_id_empty", [] { return With("module_id", Text("")); }},
      {"module_id_control_char", [] { return With("module_id", Text("i-\n")); }},
      {"module_id_too_long", [] { return With("module_id", Text(std::string(257, 'a'))); }},
      {"module_id_null", [] { return With("module_id", CborNull()); }},
      {"digest_sha256", [] { return With("digest", Text("SHA256")); }},
      {"digest_lower_case", [] { return With("digest", Text("sha384")); }},
      {"digest_int", [] { return With("digest", CborUint(384)); }},
      {"timestamp_zero", [] { return With("timestamp", CborUint(0)); }},
      {"timestamp_negative", [] { return With("timestamp", CborPtr(cbor_build_negint8(5))); }},
      {"timestamp_text", [] { return With("timestamp", Text("1725719859545")); }},
      {"timestamp_huge", [] { return With("timestamp", CborUint(UINT64_MAX)); }},
      {"timestamp_float", [] { return With("timestamp", CborPtr(cbor_build_float8(1.5e12))); }},
      {"pcrs_array", [] { return With("pcrs", BytesArray(16, 48)); }},
      {"pcrs_empty", [] { return With("pcrs", PcrMap(0, 48)); }},
      {"pcrs_33_entries", [] { return With("pcrs", PcrMap(33, 48)); }},
      {"pcr_32_bytes", [] { return With("pcrs", PcrMap(16, 32)); }},
      {"pcr_64_bytes", [] { return With("pcrs", PcrMap(16, 64)); }},
      {"pcr_47_bytes", [] { return With("pcrs", PcrMap(16, 47)); }},
      {"pcr_empty", [] { return With("pcrs", PcrMap(1, 0)); }},
      {"pcr_index_32", [] { return With("pcrs", PcrMap(1, 48, 32)); }},
      {"pcr_index_text",
       [] {
         CborPtr map(cbor_new_definite_map(1));
         EXPECT_TRUE(CborMapAdd(map.get(), Text("0"), CborBytes(Bytes(48, 0))));
         return With("pcrs", std::move(map));
       }},
      {"pcr_index_negative",
       [] {
         CborPtr map(cbor_new_definite_map(1));
         EXPECT_TRUE(
             CborMapAdd(map.get(), CborPtr(cbor_build_negint8(0)), CborBytes(Bytes(48, 0))));
         return With("pcrs", std::move(map));
       }},
      {"pcr_value_text",
       [] {
         CborPtr map(cbor_new_definite_map(1));
         EXPECT_TRUE(CborMapAdd(map.get(), CborUint(0), Text(std::string(48, 'a'))));
         return With("pcrs", std::move(map));
       }},
      {"pcr_duplicate_index",
       [] {
         CborPtr map(cbor_new_definite_map(2));
         EXPECT_TRUE(CborMapAdd(map.get(), CborUint(3), CborBytes(Bytes(48, 0))));
         EXPECT_TRUE(CborMapAdd(map.get(), CborUint(3), CborBytes(Bytes(48, 1))));
         return With("pcrs", std::move(map));
       }},
      {"certificate_text", [] { return With("certificate", Text("MIIB")); }},
      {"certificate_empty", [] { return With("certificate", CborBytes(Bytes())); }},
      {"certificate_1025", [] { return With("certificate", CborBytes(Bytes(1025, 0x30))); }},
      {"certificate_null", [] { return With("certificate", CborNull()); }},
      {"cabundle_map", [] { return With("cabundle", PcrMap(1, 48)); }},
      {"cabundle_empty", [] { return With("cabundle", BytesArray(0, 10)); }},
      {"cabundle_9_entries", [] { return With("cabundle", BytesArray(9, 10)); }},
      {"cabundle_empty_entry", [] { return With("cabundle", BytesArray(2, 0)); }},
      {"cabundle_1025_entry", [] { return With("cabundle", BytesArray(2, 1025)); }},
      {"cabundle_text_entry",
       [] {
         CborPtr array(cbor_new_definite_array(1));
         EXPECT_TRUE(CborArrayPush(array.get(), Text("cert")));
         return With("cabundle", std::move(array));
       }},
      {"public_key_empty", [] { return With("public_key", CborBytes(Bytes())); }},
      {"public_key_1025", [] { return With("public_key", CborBytes(Bytes(1025, 1))); }},
      {"public_key_bool", [] { return With("public_key", CborPtr(cbor_build_bool(true))); }},
      // Floats where null is allowed: libcbor's own null check aborts on these.
      {"public_key_half_float", [] { return With("public_key", CborPtr(cbor_build_float2(1))); }},
      {"user_data_float32", [] { return With("user_data", CborPtr(cbor_build_float4(0))); }},
      {"nonce_float64", [] { return With("nonce", CborPtr(cbor_build_float8(-2))); }},
      {"user_data_1025", [] { return With("user_data", CborBytes(Bytes(1025, 1))); }},
      {"user_data_text", [] { return With("user_data", Text("hello")); }},
      {"nonce_1025", [] { return With("nonce", CborBytes(Bytes(1025, 1))); }},
      {"nonce_int", [] { return With("nonce", CborUint(7)); }},
      {"nonce_undefined", [] { return With("nonce", CborPtr(cbor_new_undef())); }},
      {"tagged_payload",
       [] {
         Pairs p = BasePairs();
         Bytes b = Encode(p);
         b.insert(b.begin(), {0xd8, 0x18});  // tag 24 (embedded CBOR) around the map
         return b;
       }},
  };
}

TEST(AttestationDocTest, ParserRejectsEveryFailingCase) {
  for (const FailingCase& c : FailingCases()) {
    Bytes payload = c.make();
    auto doc = ParseAttestationPayload(payload);
    EXPECT_FALSE(doc.has_value()) << c.name;
    if (!doc) {
      EXPECT_EQ(doc.error().code(), ErrorCode::kMalformed) << c.name;
    }
  }
}

TEST(AttestationDocTest, EncoderRefusesWhatTheParserRefuses) {
  Pairs p = BasePairs();
  AttestationDoc doc = *ParseAttestationPayload(Encode(p));
  AttestationDoc bad = doc;
  bad.user_data = Bytes(1025, 0);
  EXPECT_EQ(EncodeAttestationPayload(bad).error().code(), ErrorCode::kInvalidArgument);
  bad = doc;
  bad.pcrs[40] = Bytes(48, 0);
  EXPECT_FALSE(EncodeAttestationPayload(bad).has_value());
  bad = doc;
  bad.pcrs[1] = Bytes(32, 0);
  EXPECT_FALSE(EncodeAttestationPayload(bad).has_value());
  bad = doc;
  bad.module_id.clear();
  EXPECT_FALSE(EncodeAttestationPayload(bad).has_value());
  bad = doc;
  bad.cabundle.clear();
  EXPECT_FALSE(EncodeAttestationPayload(bad).has_value());
  bad = doc;
  bad.digest = "SHA512";
  EXPECT_FALSE(EncodeAttestationPayload(bad).has_value());
}

// Re-encoding a real NSM payload gives back the exact bytes: our encoder writes the NSM's field
// order, integer widths and null optionals.
TEST(AttestationDocTest, ReencodingRealPayloadsIsByteExact) {
  for (const char* file :
       {kBlockyProd.file, kBlockyDebug.file, kAnjunaProd.file, kAnjunaPublicKey.file}) {
    auto parsed = ParseAttestationDocument(LoadVector(file));
    ASSERT_TRUE(parsed.has_value()) << file << ": " << parsed.error().ToString();
    auto encoded = EncodeAttestationPayload(parsed->doc);
    ASSERT_TRUE(encoded.has_value()) << file;
    EXPECT_EQ(*encoded, parsed->cose.payload) << file;
  }
}

TEST(AttestationDocTest, RoundTrip) {
  Pairs p = BasePairs();
  AttestationDoc doc = *ParseAttestationPayload(Encode(p));
  doc.public_key = Bytes(5, 9);
  doc.nonce = Bytes();
  auto encoded = EncodeAttestationPayload(doc);
  ASSERT_TRUE(encoded.has_value());
  EXPECT_EQ((*encoded)[0], 0xa9);  // definite map of 9
  auto back = ParseAttestationPayload(*encoded);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, doc);
}

TEST(AttestationDocTest, DebugModeDetection) {
  AttestationDoc doc;
  for (uint32_t i = 0; i < 16; ++i) doc.pcrs[i] = Bytes(48, 0);
  EXPECT_TRUE(IsDebugMode(doc));
  doc.pcrs[2][47] = 1;
  EXPECT_FALSE(IsDebugMode(doc));
  doc.pcrs.erase(2);
  EXPECT_TRUE(IsDebugMode(doc));  // absent counts as zero: fail closed
  doc.pcrs[0][0] = 1;
  EXPECT_FALSE(IsDebugMode(doc));
}

}  // namespace
}  // namespace cloister::attestation
