// Runs the built `cloister` binary: platform init / root-cert / attest, verify-attestation and
// pcr, checking exit codes (0 ok, 1 failed, 2 usage) and the JSON on stdout.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"
#include "tests/attestation/test_vectors.h"

namespace cloister::attestation {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct Output {
  int code = -1;
  std::string out;
  std::string err;
  json j() const { return json::parse(out, nullptr, false); }
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cloister_cli_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    state_ = dir_ + "/state";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `cloister <args>` with `env` prepended (e.g. "XDG_STATE_HOME=/x").
  Output Run(const std::string& args, const std::string& env = "") {
    std::string out = dir_ + "/stdout";
    std::string err = dir_ + "/stderr";
    std::string cmd = "env -u XDG_STATE_HOME HOME=" + dir_ + "/home " + env + " " +
                      std::string(CLOISTER_BINARY_DIR) + "/cli/cloister " + args + " >" + out +
                      " 2>" + err + " </dev/null";
    int status = std::system(cmd.c_str());
    Output o;
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = ReadTextFile(out).value_or("");
    o.err = ReadTextFile(err).value_or("");
    return o;
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name, std::ios::binary) << text;
  }

  std::string dir_;
  std::string state_;
};

const std::string kPcr0(96, 'a');
const std::string kPcr1(96, 'b');

TEST_F(CliTest, PlatformJourneyAndVerify) {
  Output init = Run("platform init --state-dir " + state_);
  ASSERT_EQ(init.code, 0) << init.out << init.err;
  EXPECT_EQ(init.j()["StateDir"], state_);
  struct stat st {};
  ASSERT_EQ(stat((state_ + "/platform.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(state_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  // Not a usage error: the platform is there (exit 1), and the message names --force.
  Output again = Run("platform init --state-dir " + state_);
  EXPECT_EQ(again.code, 1);
  EXPECT_NE(again.j()["error"]["message"].get<std::string>().find(
                "cloister platform init --force"),
            std::string::npos)
      << again.out;

  Output root = Run("platform root-cert --state-dir " + state_);
  ASSERT_EQ(root.code, 0);
  EXPECT_EQ(root.out, *ReadTextFile(state_ + "/root.pem"));
  EXPECT_NE(root.out.find("BEGIN CERTIFICATE"), std::string::npos);

  Write("pub.der", std::string(100, '\x30'));
  Output attest = Run("platform attest --state-dir " + state_ + " --pcr 0=" + kPcr0 +
                      " --pcr 1=" + kPcr1 + " --user-data 68656c6c6f --nonce 0102 --public-key " +
                      dir_ + "/pub.der --out " + dir_ + "/doc.cbor");
  ASSERT_EQ(attest.code, 0) << attest.out << attest.err;
  EXPECT_EQ(attest.j()["Document"], dir_ + "/doc.cbor");

  std::string doc = " --doc " + dir_ + "/doc.cbor --root " + state_ + "/root.pem";
  Output ok =
      Run("verify-attestation" + doc + " --expect-pcr 0=" + kPcr0 + " --nonce 0102 --max-age 60");
  ASSERT_EQ(ok.code, 0) << ok.out << ok.err;
  json j = ok.j();
  EXPECT_EQ(j["Verified"], true);
  EXPECT_EQ(j["PCRs"]["PCR0"], kPcr0);
  EXPECT_EQ(j["PCRs"]["PCR1"], kPcr1);
  EXPECT_EQ(j["PCRs"]["PCR2"], std::string(96, '0'));
  EXPECT_EQ(j["PCRs"].size(), 16u);
  EXPECT_EQ(j["UserData"], "68656c6c6f");
  EXPECT_EQ(j["Nonce"], "0102");
  EXPECT_EQ(j["PublicKey"], HexEncode(Bytes(100, 0x30)));
  EXPECT_TRUE(j["ModuleId"].get<std::string>().starts_with("i-"));
  EXPECT_TRUE(j["Timestamp"].is_number_integer());

  // The default root comes from the default state directory (here via --state-dir).
  EXPECT_EQ(Run("verify-attestation --doc " + dir_ + "/doc.cbor --state-dir " + state_).code, 0);

  Output wrong_pcr = Run("verify-attestation" + doc + " --expect-pcr 0=" + kPcr1);
  EXPECT_EQ(wrong_pcr.code, 1);
  EXPECT_FALSE(wrong_pcr.j().contains("Verified"));
  EXPECT_EQ(wrong_pcr.j()["error"]["code"], "policy_denied");
  // Both values, so the operator sees which image was attested.
  EXPECT_NE(wrong_pcr.j()["error"]["message"].get<std::string>().find(
                "PCR0 does not match the expected value: the document has " + kPcr0 +
                ", expected " + kPcr1),
            std::string::npos)
      << wrong_pcr.out;
  EXPECT_EQ(Run("verify-attestation" + doc + " --nonce 0103").code, 1);
  EXPECT_EQ(Run("verify-attestation" + doc + " --at 2020-01-01T00:00:00Z").code, 1);

  Write("m.json", "{\"Measurements\": {\"HashAlgorithm\": \"Sha384 { ... }\", \"PCR0\": \"" +
                      kPcr0 + "\", \"PCR1\": \"" + kPcr1 + "\", \"PCR2\": \"" +
                      std::string(96, '0') + "\"}}");
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-measurements " + dir_ + "/m.json").code, 0);
  // The inner object alone, with another image's PCR0: parsed, and the document does not match.
  Write("inner.json", "{\"HashAlgorithm\": \"Sha384 { ... }\", \"PCR0\": \"" + kPcr1 +
                          "\", \"PCR1\": \"" + kPcr1 + "\", \"PCR2\": \"" +
                          std::string(96, '0') + "\"}");
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-measurements " + dir_ + "/inner.json").code,
            1);
  // Measurements files are parsed strictly (attestation/measurements.h): PCR0-2 required. A bad
  // file is a failed input (exit 1), not a usage error.
  Write("partial.json", "{\"PCR0\": \"" + kPcr0 + "\"}");
  EXPECT_EQ(
      Run("verify-attestation" + doc + " --expect-measurements " + dir_ + "/partial.json").code, 1);
  // A measurement that contradicts --expect-pcr is a usage error.
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-pcr 0=" + kPcr1 +
                " --expect-measurements " + dir_ + "/m.json")
                .code,
            2);
  Write("bad.json", "{\"HashAlgorithm\": \"Sha256\", \"PCR0\": \"" + kPcr0 + "\"}");
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-measurements " + dir_ + "/bad.json").code,
            1);

  // Another platform's root does not accept the document.
  ASSERT_EQ(Run("platform init --state-dir " + dir_ + "/other").code, 0);
  Output other =
      Run("verify-attestation --doc " + dir_ + "/doc.cbor --root " + dir_ + "/other/root.pem");
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.j()["error"]["message"].get<std::string>().find("trusted root"), std::string::npos);
}

TEST_F(CliTest, XdgDefaultStateDirectory) {
  std::string env = "XDG_STATE_HOME=" + dir_ + "/xdg";
  ASSERT_EQ(Run("platform init", env).code, 0);
  EXPECT_TRUE(fs::exists(dir_ + "/xdg/cloister/platform/platform.json"));
  ASSERT_EQ(Run("platform attest --out " + dir_ + "/d.cbor", env).code, 0);
  EXPECT_EQ(Run("verify-attestation --allow-debug --doc " + dir_ + "/d.cbor", env).code, 0);
  // All-zero PCR0-2 is debug mode: refused without --allow-debug.
  Output debug = Run("verify-attestation --doc " + dir_ + "/d.cbor", env);
  EXPECT_EQ(debug.code, 1);
  EXPECT_NE(debug.j()["error"]["message"].get<std::string>().find("debug"), std::string::npos);
  // Without XDG_STATE_HOME the default is ~/.local/state/cloister/platform.
  ASSERT_EQ(Run("platform init").code, 0);
  EXPECT_TRUE(fs::exists(dir_ + "/home/.local/state/cloister/platform/root.pem"));
}

TEST_F(CliTest, RealVectors) {
  std::string root = " --root " + testing::VectorPath("aws_nitro_enclaves_root_g1.pem");
  std::string b64 = " --doc " + testing::VectorPath(testing::kBlockyProd.file);
  Output ok = Run("verify-attestation" + b64 + root + " --at 2024-09-07T14:37:40Z");
  ASSERT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_EQ(ok.j()["ModuleId"], testing::kBlockyProd.module_id);
  EXPECT_EQ(ok.j()["Timestamp"], testing::kBlockyProd.timestamp);
  Output expired = Run("verify-attestation" + b64 + root);
  EXPECT_EQ(expired.code, 1);
  EXPECT_NE(expired.j()["error"]["message"].get<std::string>().find("certificate expired"),
            std::string::npos);
  std::string cbor = " --doc " + testing::VectorPath(testing::kAnjunaPublicKey.file);
  Output anjuna = Run("verify-attestation" + cbor + root + " --at 2021-03-24T16:10:42Z");
  ASSERT_EQ(anjuna.code, 0) << anjuna.out;
  EXPECT_TRUE(anjuna.j()["UserData"].is_null());
  EXPECT_TRUE(anjuna.j()["Nonce"].is_null());
  std::string debug = " --doc " + testing::VectorPath(testing::kBlockyDebug.file) + root +
                      " --at 2024-09-07T14:38:07Z";
  EXPECT_EQ(Run("verify-attestation" + debug).code, 1);
  Output allowed = Run("verify-attestation" + debug + " --allow-debug");
  EXPECT_EQ(allowed.code, 0);
  EXPECT_EQ(allowed.j()["Debug"], true);
}

TEST_F(CliTest, UsageAndMalformedInput) {
  EXPECT_EQ(Run("verify-attestation").code, 2);
  Write("junk", "this is not a document");
  std::string root = " --root " + testing::VectorPath("aws_nitro_enclaves_root_g1.pem");
  Output junk = Run("verify-attestation --doc " + dir_ + "/junk" + root);
  EXPECT_EQ(junk.code, 1);
  EXPECT_EQ(junk.j()["error"]["code"], "malformed");
  std::string doc = " --doc " + testing::VectorPath(testing::kAnjunaProd.file) + root;
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-pcr 0=zz").code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-pcr 32=" + kPcr0).code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --expect-pcr 0=" + kPcr0.substr(2)).code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --at yesterday").code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --nonce xyz").code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --max-age -5").code, 2);
  EXPECT_EQ(Run("verify-attestation" + doc + " --bogus").code, 2);
  // Missing or unparsable files are failures (exit 1), not usage errors (docs/cli.md).
  EXPECT_EQ(Run("verify-attestation --doc " + dir_ + "/missing" + root).code, 1);
  EXPECT_EQ(Run("verify-attestation --doc " + dir_ + "/junk --root " + dir_ + "/junk").code, 1);
  // No platform in the default location.
  EXPECT_EQ(Run("verify-attestation --doc " + dir_ + "/junk").code, 1);
  EXPECT_EQ(Run("platform root-cert --state-dir " + dir_ + "/none").code, 1);
  EXPECT_EQ(Run("platform attest --state-dir " + dir_ + "/none --out " + dir_ + "/x").code, 1);
  EXPECT_EQ(Run("platform attest --state-dir " + dir_ + "/none").code, 2);
  ASSERT_EQ(Run("platform init --state-dir " + state_).code, 0);
  EXPECT_EQ(Run("platform attest --state-dir " + state_ + " --user-data " + std::string(2050, 'a') +
                " --out " + dir_ + "/x")
                .code,
            2);
  EXPECT_EQ(
      Run("platform attest --state-dir " + state_ + " --pcr 40=" + kPcr0 + " --out " + dir_ + "/x")
          .code,
      2);
  EXPECT_EQ(Run("platform").code, 2);
}

TEST_F(CliTest, PcrAsNitroCliPrintsIt) {
  Write("data.bin", "hello enclave");
  Output input = Run("pcr --input " + dir_ + "/data.bin");
  ASSERT_EQ(input.code, 0) << input.out << input.err;
  Bytes extend(48, 0);
  Append(extend, Sha384(AsBytes("hello enclave")));
  EXPECT_EQ(input.j(), json({{"PCR", HexEncode(Sha384(extend))}}));

  std::string pem_path = testing::VectorPath("aws_nitro_enclaves_root_g1.pem");
  Output cert = Run("pcr --signing-certificate " + pem_path);
  ASSERT_EQ(cert.code, 0) << cert.out << cert.err;
  auto parsed = ParseCertificatePem(*ReadTextFile(pem_path));
  Bytes pcr8_input(48, 0);
  Append(pcr8_input, Sha384(*CertificateToDer(parsed->get())));
  EXPECT_EQ(cert.j(), json({{"PCR8", HexEncode(Sha384(pcr8_input))}}));

  EXPECT_EQ(Run("pcr").code, 2);
  EXPECT_EQ(Run("pcr --input " + dir_ + "/data.bin --signing-certificate " + pem_path).code, 2);
  EXPECT_EQ(Run("pcr --input " + dir_ + "/missing").code, 1);
  EXPECT_EQ(Run("pcr --signing-certificate " + dir_ + "/data.bin").code, 1);
}

}  // namespace
}  // namespace cloister::attestation
