// Object detection inside a real enclave (issue 18, a first step): the app and the pinned model
// built into an image with `cloister build-enclave --app-dir` (the ELF closure brings OpenCV; the
// manifest's packages bring opencv-data's Haar cascades), the image owner (buyer1) joins the
// session and encrypts a batch of opencv-doc images, cloister-parent runs it, and the image
// owner decrypts its private detections with its own key: they equal what the same app binary
// gives on the host for the same images (the reference comparison: boxes within a pixel, scores
// within 1e-4). Another principal with a key of its own (buyer2) and the operator get
// AccessDenied on them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/file.h"
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

TEST(ObjectDetectionEnclaveTest, DetectionsInTheEnclaveEqualTheHostsAndReachOnlyTheImageOwner) {
  auto w = JourneyWorld::Create("cloister-objdet-enclave");
  ASSERT_TRUE(w) << w.error().ToString();
  std::unique_ptr<JourneyWorld> world = std::move(*w);
  testing::TempDir project("cloister-objdet-project");
  const fs::path app = project.path() / "app";
  fs::create_directories(app);
  fs::copy_file(testing::BinaryPath("examples/object-detection/app/object-detection-app"),
                app / "object-detection-app");
  fs::copy_file(objdet::testing::ModelPath(), app / objdet::testing::kModelFile);
  const Principal& owner = BuyerPrincipals()[0];
  const Principal& other = BuyerPrincipals()[1];
  json parameters = objdet::testing::kParameters;
  parameters["image_party"] = owner.name;
  const json manifest = {
      {"computation_id", kComputationId},
      {"computation", "object-detection"},
      {"kms", json::parse(world->KmsManifestJson(app))},
      {"parties", {{{"id", owner.name}, {"key_arn", world->key_arn(owner.name)}}}},
      {"app",
       {{"command", "object-detection-app"},
        {"time_limit_seconds", 300},
        {"memory_mib", 768},
        {"packages", {"opencv-data"}},
        {"outputs", {{{"name", "detections"}, {"reader", owner.name}},
                     {{"name", "annotated"}, {"reader", owner.name}}}},
        {"parameters", parameters}}}};
  std::ofstream(app / "manifest.json") << manifest.dump(2) << "\n";
  const std::string measurements = world->Build(app, project.path() / "objdet.eif");
  ASSERT_FALSE(measurements.empty());
  std::ofstream(project.path() / "measurements.json") << measurements;
  ASSERT_TRUE(world->Grant(project.path() / "measurements.json"));
  ASSERT_TRUE(world->StartEnclave(project.path() / "objdet.eif", kCid, false, 1536));

  const fs::path session = project.path() / "session.cbor";
  ASSERT_TRUE(world->FetchSession(kCid, session));
  const Bytes batch = objdet::testing::SampleBatch();
  const fs::path joined = project.path() / (owner.name + "-session.json");
  CommandResult j = world->Join(owner, session, project.path() / "measurements.json", joined,
                                {"--manifest", (app / "manifest.json").string()});
  ASSERT_EQ(j.exit_code, 0) << j.out << j.err;
  CommandResult e = world->Encrypt(owner, kComputationId, owner.name,
                                   std::string(batch.begin(), batch.end()),
                                   project.path() / "inputs" / (owner.name + ".esdk"), joined);
  ASSERT_EQ(e.exit_code, 0) << e.out << e.err;
  const fs::path outputs = project.path() / "outputs";
  CommandResult run = JourneyWorld::Parent(
      {"run", "--enclave-cid", std::to_string(kCid), "--inputs",
       (project.path() / "inputs").string(), "--out", (project.path() / "receipt.cbor").string(),
       "--outputs", outputs.string()},
      OperatorPrincipal().env());
  (void)world->TerminateAll();
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const json result = json::parse(run.out);
  EXPECT_EQ(result["Outcome"]["counts"]["images"], 5) << run.out;

  auto decrypt = [&](const Principal& who, const fs::path& out) {
    std::vector<std::string> args = {"party", "decrypt", "--in",
                                     (outputs / owner.name / "detections").string(), "--out",
                                     out.string()};
    for (const std::string& a : world->KmsArgs()) args.push_back(a);
    return JourneyWorld::Cli(args, who.env());
  };
  const fs::path mine = project.path() / "detections.json";
  CommandResult opened = decrypt(owner, mine);
  ASSERT_EQ(opened.exit_code, 0) << opened.out << opened.err;
  auto text = ReadFile(mine.string(), 64 << 20);
  ASSERT_TRUE(text.has_value());
  const json inside = json::parse(std::string(text->begin(), text->end()));
  // The same app binary on the host, same images: the enclave changes nothing.
  testing::TempDir host("cloister-objdet-host");
  const std::string batch_path = (host.path() / "images.batch").string();
  ASSERT_TRUE(WriteFileAtomic(batch_path, batch).has_value());
  const json on_host = objdet::testing::CliDetect({batch_path});
  objdet::testing::ExpectNear(inside, on_host, "");
  objdet::testing::ExpectNear(inside, objdet::testing::Reference(), "");
  for (const Principal* thief : {&other, &OperatorPrincipal()}) {
    SCOPED_TRACE(thief->name);
    const fs::path stolen = project.path() / (thief->name + "-stole.json");
    CommandResult s = decrypt(*thief, stolen);
    EXPECT_EQ(s.exit_code, 1) << s.out << s.err;
    EXPECT_NE((s.out + s.err).find("AccessDenied"), std::string::npos) << s.out << s.err;
    EXPECT_FALSE(fs::exists(stolen));
  }
}

}  // namespace
}  // namespace cloister
