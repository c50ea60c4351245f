// Object detection inside a real enclave (issue 18), every binary real: the app built into an
// image with `cloister build-enclave --app-dir` (the ELF closure brings OpenCV; the manifest's
// packages bring opencv-data's Haar cascades), the image owner (buyer1) joins the session and
// encrypts a batch of opencv-doc images, cloister-parent runs it, and the image owner decrypts its
// private detections with its own key: they equal what the same app binary gives on the host
// for the same images (boxes within a pixel, scores within 1e-4).
//   - Model in the image: another principal (buyer2) and the operator get AccessDenied on the
//     detections.
//   - Model from a model owner (buyer2's encrypted input; the image measures only the code): the
//     receipt's outcome lists the model's SHA-384; the image owner cannot open the model, the
//     model owner cannot open the images or the detections, the operator none of them; a
//     changed model byte changes the digest the receipt lists.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/file.h"
#include "common/ossl.h"
#include "tests/examples/objdet_app_run.h"
#include "tests/support/journey_world.h"
#include "tests/support/process.h"

namespace cloister {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::BuyerPrincipals;
using testing::CommandResult;
using testing::JourneyWorld;
using testing::OperatorPrincipal;
using testing::Principal;

constexpr uint32_t kCid = 47;
constexpr char kComputationId[] = "objdet-enclave-1";

class ObjectDetectionEnclaveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto w = JourneyWorld::Create("cloister-objdet-enclave");
    ASSERT_TRUE(w) << w.error().ToString();
    world_ = w->release();
  }
  static void TearDownTestSuite() { delete world_; }
  void TearDown() override { (void)world_->TerminateAll(); }

  static const Principal& Owner() { return BuyerPrincipals()[0]; }
  static const Principal& ModelOwner() { return BuyerPrincipals()[1]; }

  // Builds the image (the model in it, or from ModelOwner()), runs it on the sample batch and
  // returns the `cloister-parent run` result; the outputs land in `dir`/outputs.
  static CommandResult BuildAndRun(const fs::path& dir, bool model_in_image,
                                   const Bytes& model = objdet::testing::Model()) {
    const fs::path app = dir / "app";
    fs::create_directories(app);
    fs::copy_file(testing::BinaryPath("examples/object-detection/app/object-detection-app"),
                  app / "object-detection-app");
    json parameters = objdet::testing::kParameters;
    parameters["image_party"] = Owner().name;
    json parties = {{{"id", Owner().name}, {"key_arn", world_->key_arn(Owner().name)}}};
    if (model_in_image) {
      fs::copy_file(objdet::testing::ModelPath(), app / objdet::testing::kModelFile);
    } else {
      parameters["model_party"] = ModelOwner().name;
      parameters["public"] = "nothing";
      parties.push_back({{"id", ModelOwner().name},
                         {"key_arn", world_->key_arn(ModelOwner().name)}});
    }
    const json manifest = {
        {"computation_id", kComputationId},
        {"computation", "object-detection"},
        {"kms", json::parse(world_->KmsManifestJson(app))},
        {"parties", parties},
        {"app",
         {{"command", "object-detection-app"},
          {"time_limit_seconds", 300},
          {"memory_mib", 768},
          {"packages", {"opencv-data"}},
          {"outputs", {{{"name", "detections"}, {"reader", Owner().name}},
                       {{"name", "annotated"}, {"reader", Owner().name}}}},
          {"parameters", parameters}}}};
    std::ofstream(app / "manifest.json") << manifest.dump(2) << "\n";
    const std::string measurements = world_->Build(app, dir / "objdet.eif");
    EXPECT_FALSE(measurements.empty());
    std::ofstream(dir / "measurements.json") << measurements;
    EXPECT_TRUE(world_->Grant(dir / "measurements.json"));
    EXPECT_TRUE(world_->StartEnclave(dir / "objdet.eif", kCid, false, 1536));

    const fs::path session = dir / "session.cbor";
    EXPECT_TRUE(world_->FetchSession(kCid, session));
    std::vector<std::pair<const Principal*, Bytes>> inputs = {
        {&Owner(), objdet::testing::SampleBatch()}};
    if (!model_in_image) inputs.push_back({&ModelOwner(), model});
    for (const auto& [who, bytes] : inputs) {
      const fs::path joined = dir / (who->name + "-session.json");
      CommandResult j = world_->Join(*who, session, dir / "measurements.json", joined,
                                     {"--manifest", (app / "manifest.json").string()});
      EXPECT_EQ(j.exit_code, 0) << j.out << j.err;
      CommandResult e = world_->Encrypt(*who, kComputationId, who->name,
                                        std::string(bytes.begin(), bytes.end()),
                                        dir / "inputs" / (who->name + ".esdk"), joined);
      EXPECT_EQ(e.exit_code, 0) << e.out << e.err;
    }
    return JourneyWorld::Parent(
        {"run", "--enclave-cid", std::to_string(kCid), "--inputs", (dir / "inputs").string(),
         "--out", (dir / "receipt.cbor").string(), "--outputs", (dir / "outputs").string()},
        OperatorPrincipal().env());
  }

  static CommandResult Decrypt(const Principal& who, const fs::path& in, const fs::path& out) {
    std::vector<std::string> args = {"party", "decrypt", "--in", in.string(), "--out",
                                     out.string()};
    for (const std::string& a : world_->KmsArgs()) args.push_back(a);
    return JourneyWorld::Cli(args, who.env());
  }

  // The detections the image owner opens equal the host's for the same images.
  static void ExpectTheHostsDetections(const fs::path& dir) {
    const fs::path mine = dir / "detections.json";
    CommandResult opened = Decrypt(Owner(), dir / "outputs" / Owner().name / "detections", mine);
    ASSERT_EQ(opened.exit_code, 0) << opened.out << opened.err;
    auto text = ReadFile(mine.string(), 64 << 20);
    ASSERT_TRUE(text.has_value());
    const json inside = json::parse(std::string(text->begin(), text->end()));
    testing::TempDir host("cloister-objdet-host");
    const std::string batch_path = (host.path() / "images.batch").string();
    ASSERT_TRUE(WriteFileAtomic(batch_path, objdet::testing::SampleBatch()).has_value());
    const json on_host = objdet::testing::CliDetect({batch_path});
    objdet::testing::ExpectNear(inside, on_host, "");
    objdet::testing::ExpectNear(inside, objdet::testing::Reference(), "");
  }

  static void ExpectRefused(const Principal& thief, const fs::path& file, const fs::path& dir) {
    SCOPED_TRACE(thief.name + " opening " + file.filename().string());
    const fs::path stolen = dir / (thief.name + "-stole");
    CommandResult s = Decrypt(thief, file, stolen);
    EXPECT_EQ(s.exit_code, 1) << s.out << s.err;
    EXPECT_NE((s.out + s.err).find("AccessDenied"), std::string::npos) << s.out << s.err;
    EXPECT_FALSE(fs::exists(stolen));
  }

  static JourneyWorld* world_;
};

JourneyWorld* ObjectDetectionEnclaveTest::world_ = nullptr;

TEST_F(ObjectDetectionEnclaveTest, DetectionsInTheEnclaveEqualTheHostsAndReachOnlyTheImageOwner) {
  testing::TempDir dir("cloister-objdet-image-model");
  CommandResult run = BuildAndRun(dir.path(), /*model_in_image=*/true);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(json::parse(run.out)["Outcome"]["counts"]["images"], 5) << run.out;
  ASSERT_NO_FATAL_FAILURE(ExpectTheHostsDetections(dir.path()));
  const fs::path detections = dir.path() / "outputs" / Owner().name / "detections";
  for (const Principal* thief : {&ModelOwner(), &OperatorPrincipal()}) {
    ExpectRefused(*thief, detections, dir.path());
  }
}

TEST_F(ObjectDetectionEnclaveTest, AModelOwnersModelAndTheImagesMeetOnlyInTheEnclave) {
  testing::TempDir dir("cloister-objdet-model-owner");
  CommandResult run = BuildAndRun(dir.path(), /*model_in_image=*/false);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  // The receipt names the model by its digest, and says nothing else.
  const json outcome = json::parse(run.out)["Outcome"];
  EXPECT_EQ(outcome, (json{{"computation", "object-detection"},
                           {"model_sha384", HexEncode(Sha384(objdet::testing::Model()))},
                           {"model_source", "party:" + ModelOwner().name}}))
      << run.out;
  ASSERT_NO_FATAL_FAILURE(ExpectTheHostsDetections(dir.path()));
  const fs::path model = dir.path() / "inputs" / (ModelOwner().name + ".esdk");
  const fs::path images = dir.path() / "inputs" / (Owner().name + ".esdk");
  const fs::path detections = dir.path() / "outputs" / Owner().name / "detections";
  ExpectRefused(Owner(), model, dir.path());
  ExpectRefused(ModelOwner(), images, dir.path());
  ExpectRefused(ModelOwner(), detections, dir.path());
  for (const fs::path& secret : {model, images, detections}) {
    ExpectRefused(OperatorPrincipal(), secret, dir.path());
  }

  // One byte of the model's weights changed: the receipt names another digest (the model
  // still loads and runs).
  TearDown();
  testing::TempDir changed_dir("cloister-objdet-changed-model");
  Bytes changed = objdet::testing::Model();
  ASSERT_FALSE(changed.empty());
  changed[changed.size() / 2] ^= 0x01;
  CommandResult rerun = BuildAndRun(changed_dir.path(), /*model_in_image=*/false, changed);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.out << rerun.err;
  const json changed_outcome = json::parse(rerun.out)["Outcome"];
  EXPECT_EQ(changed_outcome["model_sha384"], HexEncode(Sha384(changed)));
  EXPECT_NE(changed_outcome["model_sha384"], outcome["model_sha384"]);
}

}  // namespace
}  // namespace cloister
