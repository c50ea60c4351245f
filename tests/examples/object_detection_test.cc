// Tests of examples/object-detection run as real binaries on the host: the host CLI
// (object-detect) gives the reference detections (object_detection_reference.json: the boxes
// within a pixel, the scores within 1e-4 - what the enclave run is compared with), the app
// (object-detection-app) in the docs/apps.md layout gives the CLI's detections with the model
// in the image or from a model owner, a changed model byte changes the outcome's model digest,
// redaction blurs the faces, and the example's manifests run. (Hostile images and bad manifests,
// inputs and models: tests/adversarial/objdet_hostile_test.cc.)
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/image_codec.h"
#include "tests/examples/objdet_app_run.h"
#include "tests/examples/objdet_images.h"
#include "tests/support/process.h"

namespace cloister::objdet {
namespace {

using cloister::testing::TempDir;
using namespace objdet::testing;  // NOLINT: the helpers of this example's tests

TEST(ObjectDetectionTest, CliGivesTheReferenceDetections) {
  const nlohmann::json got = CliDetect(SamplePaths());
  ExpectNear(got, Reference(), "");
  EXPECT_EQ(got["model_sha384"], HexEncode(Sha384(Model())));
  // Independently of the reference: Messi's face, where it is in messi5.jpg (548x342), and
  // no face on the baboon at BlazeFace's threshold.
  const nlohmann::json& messi = got["images"][0]["detections"][0];
  EXPECT_EQ(messi["detector"], "blazeface");
  EXPECT_GT(messi["score"].get<double>(), 0.75);
  const nlohmann::json& box = messi["box"];
  EXPECT_NEAR(box["x"].get<double>() + box["width"].get<double>() / 2, 240, 10);
  EXPECT_NEAR(box["y"].get<double>() + box["height"].get<double>() / 2, 115, 10);
  EXPECT_EQ(messi["keypoints"].size(), 6u);
  for (const auto& d : got["images"][3]["detections"]) EXPECT_NE(d["detector"], "blazeface");
}

TEST(ObjectDetectionTest, AppWithTheModelInTheImageGivesTheCliDetections) {
  const Bytes batch = SampleBatch();
  TempDir dir("objdet-cli");
  const std::string batch_path = (dir.path() / "images.batch").string();
  ASSERT_TRUE(WriteFileAtomic(batch_path, batch).has_value());
  const nlohmann::json cli = CliDetect({batch_path});
  const AppRun run = RunApp(Manifest(kParameters, false), {{"images", batch}});
  ASSERT_EQ(run.exit_code, 0) << run.error;
  EXPECT_EQ(run.files, (std::vector<std::string>{"outcome.json", "private/images/annotated",
                                                 "private/images/detections"}));
  ASSERT_TRUE(run.detections.has_value());
  EXPECT_EQ(*run.detections, cli);  // the same code on the same machine: exactly
  ExpectNear(*run.detections, Reference(), "");
  ASSERT_TRUE(run.outcome.has_value());
  const nlohmann::json& outcome = *run.outcome;
  EXPECT_EQ(outcome["computation"], "object-detection");
  EXPECT_EQ(outcome["model_sha384"], HexEncode(Sha384(Model())));
  EXPECT_EQ(outcome["model_source"], std::string("image:") + kModelFile);
  EXPECT_EQ(outcome["counts"]["images"], 5);
  EXPECT_EQ(outcome["counts"]["failed"], 0);
  size_t faces = 0;
  for (const auto& image : cli["images"]) {
    for (const auto& d : image["detections"]) faces += d["label"] == "face";
  }
  EXPECT_EQ(outcome["counts"]["detections"]["face"], faces);
  // The annotated PNGs: one per image, named as it, with its dimensions.
  ASSERT_TRUE(run.annotated.has_value());
  auto entries = ParseBatch(*run.annotated);
  ASSERT_TRUE(entries.has_value()) << entries.error().message();
  ASSERT_EQ(entries->size(), kImages.size());
  for (size_t i = 0; i < kImages.size(); ++i) {
    EXPECT_EQ((*entries)[i].name, kImages[i]);
    EXPECT_EQ(SniffImageFormat((*entries)[i].data), ImageFormat::kPng);
    auto png = DecodeImage((*entries)[i].data);
    ASSERT_TRUE(png.has_value());
    EXPECT_EQ(png->width, cli["images"][i]["width"]);
    EXPECT_EQ(png->height, cli["images"][i]["height"]);
  }
}

TEST(ObjectDetectionTest, AppWithTheModelFromTheModelOwnerListsItsDigestAndSaysNothingElse) {
  nlohmann::json parameters = kParameters;
  parameters["model_party"] = "model-owner";
  parameters["public"] = "nothing";
  const Bytes model = Model();
  const AppRun run =
      RunApp(Manifest(parameters, true), {{"images", SampleBatch()}, {"model-owner", model}},
             /*model_in_image=*/false);
  ASSERT_EQ(run.exit_code, 0) << run.error;
  ASSERT_TRUE(run.detections.has_value());
  ExpectNear(*run.detections, Reference(), "");
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ(*run.outcome, (nlohmann::json{{"computation", "object-detection"},
                                          {"model_sha384", HexEncode(Sha384(model))},
                                          {"model_source", "party:model-owner"}}));
}

TEST(ObjectDetectionTest, AChangedModelByteChangesTheModelDigest) {
  nlohmann::json parameters = kParameters;
  parameters["model_party"] = "model-owner";
  parameters["detectors"] = {"blazeface"};
  Bytes model = Model();
  ASSERT_FALSE(model.empty());
  model[model.size() / 2] ^= 0x01;  // inside the weights: the model still loads
  const AppRun run = RunApp(Manifest(parameters, true),
                            {{"images", Sample("messi5.jpg")}, {"model-owner", model}}, false);
  ASSERT_EQ(run.exit_code, 0) << run.error;
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ((*run.outcome)["model_sha384"], HexEncode(Sha384(model)));
  EXPECT_NE((*run.outcome)["model_sha384"], HexEncode(Sha384(Model())));
  ASSERT_TRUE(run.detections.has_value());
  EXPECT_EQ((*run.detections)["model_sha384"], (*run.outcome)["model_sha384"]);
}

// The detail (mean absolute difference of horizontal neighbours) inside `box`, shrunk by a
// quarter on each side so that the drawn frame is outside it.
double Detail(const Image& image, const nlohmann::json& box) {
  const int x0 = static_cast<int>(box["x"].get<double>() + box["width"].get<double>() / 4);
  const int x1 = static_cast<int>(box["x"].get<double>() + box["width"].get<double>() * 3 / 4);
  const int y0 = static_cast<int>(box["y"].get<double>() + box["height"].get<double>() / 4);
  const int y1 = static_cast<int>(box["y"].get<double>() + box["height"].get<double>() * 3 / 4);
  double sum = 0;
  size_t n = 0;
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x + 1 < x1; ++x) {
      for (int c = 0; c < 3; ++c) {
        sum += std::abs(image.rgb[(size_t(y) * image.width + x) * 3 + c] -
                        image.rgb[(size_t(y) * image.width + x + 1) * 3 + c]);
        ++n;
      }
    }
  }
  return n ? sum / n : 0;
}

TEST(ObjectDetectionTest, RedactionBlursTheFaces) {
  TempDir dir("objdet-redact");
  std::map<bool, Image> annotated;
  nlohmann::json box;
  for (bool redact : {false, true}) {
    const std::string out = (dir.path() / (redact ? "redacted" : "plain")).string();
    std::vector<std::string> args = {std::string(kSampleDir) + "/messi5.jpg", "--annotated", out};
    if (redact) args.push_back("--redact");
    std::vector<std::string> argv = {Cli(), "detect", "--model", ModelPath()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = cloister::testing::RunCommand(argv);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    box = nlohmann::json::parse(r.out)["images"][0]["detections"][0]["box"];
    auto bytes = ReadFile(out);
    ASSERT_TRUE(bytes.has_value());
    auto entries = ParseBatch(*bytes);
    ASSERT_TRUE(entries.has_value());
    auto image = DecodeImage(entries->front().data);
    ASSERT_TRUE(image.has_value());
    annotated[redact] = *image;
  }
  auto original = DecodeImage(Sample("messi5.jpg"));
  ASSERT_TRUE(original.has_value());
  // Without redaction the face is drawn over (keypoints) but not blurred; with it, it is.
  EXPECT_EQ(annotated[false].rgb.size(), original->rgb.size());
  const double plain = Detail(*original, box), redacted = Detail(annotated[true], box);
  EXPECT_GT(plain, 10.0);
  EXPECT_LT(redacted, plain / 3) << "plain " << plain << ", redacted " << redacted;
}

// The example's two manifests, as they are (placeholder ARNs and endpoint aside, nothing the
// app reads), pass the runtime's own check (what build-enclave runs) and run the app.
TEST(ObjectDetectionTest, TheExampleManifestsRun) {
  for (const char* file : {"manifest.json", "manifest-model-owner.json"}) {
    SCOPED_TRACE(file);
    auto text =
        ReadTextFile(std::string(CLOISTER_SOURCE_DIR) + "/examples/object-detection/" + file);
    ASSERT_TRUE(text.has_value());
    const std::string path =
        std::string(CLOISTER_SOURCE_DIR) + "/examples/object-detection/" + file;
    auto check = cloister::testing::RunCommand(
        {cloister::testing::BinaryPath("enclave/cloister-enclave"), "--check-manifest", path});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
    const nlohmann::json manifest = nlohmann::json::parse(*text);
    const bool two = manifest["parties"].size() == 2;
    std::map<std::string, Bytes> inputs = {{"images", SampleBatch()}};
    if (two) inputs["model-owner"] = Model();
    const AppRun run = RunApp(manifest, inputs, /*model_in_image=*/!two);
    ASSERT_EQ(run.exit_code, 0) << run.error;
    ASSERT_TRUE(run.outcome.has_value());
    EXPECT_EQ((*run.outcome)["model_source"],
              two ? std::string("party:model-owner") : std::string("image:") + kModelFile);
    EXPECT_EQ(run.outcome->contains("counts"), two);
    ASSERT_TRUE(run.detections.has_value());
    EXPECT_EQ((*run.detections)["images"].size(), kImages.size());
  }
}

}  // namespace
}  // namespace cloister::objdet
