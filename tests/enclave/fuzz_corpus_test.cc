// Writes seed inputs for tests/fuzz/corpus/{esdk,frames}/ (frames: also receipts and session
// files) when CLOISTER_WRITE_CORPUS names the
// corpus root (run once by hand; the files are committed). Skipped otherwise.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/file.h"
#include "formats/esdk.h"
#include "formats/frames.h"
#include "formats/receipt.h"
#include "formats/session_statement.h"

namespace cloister::enclave {
namespace {

// Generates the fixed key the esdk fuzz target's provider returns.
class FixedKeyProvider : public formats::esdk::DataKeyProvider {
 public:
  Result<DataKey> GenerateDataKey(const formats::esdk::EncryptionContext&) override {
    DataKey dk;
    CLOISTER_ASSIGN_OR_RETURN(dk.plaintext, SecretBytes::CopyOf(Bytes(32, 0x42)));
    dk.encrypted.push_back({"aws-kms", ToBytes("arn:aws:kms:us-east-1:1:key/k"), Bytes(8, 1)});
    return dk;
  }
  Result<SecretBytes> DecryptDataKey(const formats::esdk::EncryptedDataKey&,
                                     const formats::esdk::EncryptionContext&) override {
    return SecretBytes::CopyOf(Bytes(32, 0x42));
  }
};

TEST(FuzzCorpus, Write) {
  const char* root = std::getenv("CLOISTER_WRITE_CORPUS");
  if (root == nullptr) GTEST_SKIP() << "set CLOISTER_WRITE_CORPUS to write seeds";
  std::string r(root);
  FixedKeyProvider p;
  int i = 0;
  for (auto suite : {formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKey,
                     formats::esdk::AlgorithmSuite::kAes256GcmHkdfSha512CommitKeyEcdsaP384}) {
    for (size_t len : {size_t{0}, size_t{5}, size_t{40}}) {
      formats::esdk::EncryptOptions o;
      o.suite = suite;
      o.frame_length = 16;
      auto m = formats::esdk::EncryptBytes(Bytes(len, 'b'), p, {{"cloister:party", "p"}}, o);
      ASSERT_TRUE(m.has_value());
      ASSERT_TRUE(WriteFileAtomic(r + "/esdk/msg" + std::to_string(i++), *m).has_value());
    }
  }
  // One frame per request and reply type, named after it.
  namespace frames = formats::frames;
  std::vector<frames::Request> requests;
  requests.emplace_back(frames::Ping{});
  requests.emplace_back(frames::GetAttestation{Bytes(4, 1)});
  requests.emplace_back(frames::DescribePcr{16});
  requests.emplace_back(frames::SetCredentials{"AKIA", *SecretBytes::CopyOf(AsBytes("s")),
                                               *SecretBytes::CopyOf(AsBytes("t"))});
  requests.emplace_back(frames::PutInput{"p", Bytes(3, 2)});
  requests.emplace_back(frames::Run{});
  requests.emplace_back(frames::PutInputPart{"p", 5, 2, Bytes(3, 2)});
  for (const auto& m : requests) {
    auto payload = frames::EncodeRequest(m);
    ASSERT_TRUE(payload.has_value());
    auto f = frames::EncodeFrame(*payload);
    ASSERT_TRUE(f.has_value());
    std::string name = r + "/frames/request_" + std::string(frames::TypeName(m));
    ASSERT_TRUE(WriteFileAtomic(name, *f).has_value());
  }
  std::vector<frames::Response> responses;
  responses.emplace_back(frames::Ok{});
  responses.emplace_back(frames::AttestationResponse{Bytes(8, 0x84), Bytes(8, 0xa6)});
  responses.emplace_back(frames::PcrResponse{true, Bytes(48, 0)});
  responses.emplace_back(frames::InputAccepted{"p", Bytes(48, 3)});
  responses.emplace_back(frames::ReceiptResponse{Bytes(8, 0xa2), {}});
  responses.emplace_back(frames::ErrorResponse{"malformed", "x"});
  for (const auto& m : responses) {
    auto payload = frames::EncodeResponse(m);
    ASSERT_TRUE(payload.has_value());
    auto f = frames::EncodeFrame(*payload);
    ASSERT_TRUE(f.has_value());
    std::string name = r + "/frames/reply_" + std::string(frames::TypeName(m));
    ASSERT_TRUE(WriteFileAtomic(name, *f).has_value());
  }
  // A receipt reply with private outputs.
  {
    frames::ReceiptResponse with_outputs{Bytes(8, 0xa2), {}};
    with_outputs.outputs.push_back({"rank", "p", Bytes(9, 0x02)});
    with_outputs.outputs.push_back({"rank", "q", Bytes(3, 0x02)});
    auto payload = frames::EncodeResponse(with_outputs);
    ASSERT_TRUE(payload.has_value());
    auto f = frames::EncodeFrame(*payload);
    ASSERT_TRUE(f.has_value());
    ASSERT_TRUE(WriteFileAtomic(r + "/frames/reply_receipt_outputs", *f).has_value());
  }
  formats::ReceiptBody b;
  b.computation_id = "c";
  b.manifest_digest = Bytes(48, 1);
  b.session_id = Bytes(32, 4);
  b.inputs = {{"p", Bytes(48, 2)}};
  b.outcome = {0xf6};
  b.time = 1;
  b.version = formats::kReceiptVersionWithoutOutputs;
  auto v2 = formats::EncodeReceiptBody(b);
  ASSERT_TRUE(v2.has_value());
  ASSERT_TRUE(WriteFileAtomic(r + "/frames/receipt_body_v2", *v2).has_value());
  b.version = formats::kReceiptVersion;
  b.outputs = {{"rank", "p", Bytes(48, 9)}};
  auto body = formats::EncodeReceiptBody(b);
  ASSERT_TRUE(body.has_value());
  ASSERT_TRUE(WriteFileAtomic(r + "/frames/receipt_body", *body).has_value());
  auto receipt = formats::EncodeReceipt(*body, Bytes(10, 0x84));
  ASSERT_TRUE(WriteFileAtomic(r + "/frames/receipt", *receipt).has_value());
  formats::SessionStatement st;
  st.session_id = Bytes(32, 5);
  st.manifest_digest = Bytes(48, 6);
  st.public_key = Bytes(40, 7);
  st.time = 2;
  auto statement = formats::EncodeSessionStatement(st);
  ASSERT_TRUE(statement.has_value());
  ASSERT_TRUE(WriteFileAtomic(r + "/frames/session_statement", *statement).has_value());
  auto session = formats::EncodeSessionFile(*statement, Bytes(10, 0x84));
  ASSERT_TRUE(session.has_value());
  ASSERT_TRUE(WriteFileAtomic(r + "/frames/session_file", *session).has_value());
}

}  // namespace
}  // namespace cloister::enclave
