// Adversarial tests of examples/object-detection's app, run as the real binary on the host in
// the docs/apps.md layout: an image owner's hostile images (truncated, decompression bombs, huge
// declared dimensions, wrong magic; an image within the limits but beyond the app's memory)
// fail alone with their reason while the other images are detected, and the app never crashes;
// a hostile manifest, input or model (a model owner's bytes that are not a model) fails the run
// naming the cause, with no secret in the message and nothing but the error written.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "examples/object-detection/src/batch.h"
#include "tests/examples/objdet_app_run.h"
#include "tests/examples/objdet_images.h"
#include "tests/support/process.h"

namespace cloister::objdet {
namespace {

using cloister::testing::TempDir;
using namespace objdet::testing;  // NOLINT: the helpers of this example's tests

Bytes HostileBatch() {
  const Bytes messi = Sample("messi5.jpg");
  const Bytes truncated(messi.begin(), messi.begin() + messi.size() / 2);
  Bytes bomb = objdet::testing::PngHeader(30000, 30000);
  Append(bomb, objdet::testing::PngChunk("IDAT", objdet::testing::Deflate(Bytes(90001 * 16, 0))));
  Append(bomb, objdet::testing::PngChunk("IEND", {}));
  Bytes huge_jpeg = messi;
  for (size_t i = 2; i + 9 < huge_jpeg.size(); ++i) {
    if (huge_jpeg[i] == 0xFF && huge_jpeg[i + 1] == 0xC0) {
      huge_jpeg[i + 5] = huge_jpeg[i + 7] = 0xEA;  // 60000 = 0xEA60 (JPEG's most is 65500)
      huge_jpeg[i + 6] = huge_jpeg[i + 8] = 0x60;
      break;
    }
  }
  const Bytes gif = ToBytes("GIF89a\x01\x00\x01\x00\x00\x00\x00");
  return *SerializeBatch({{"messi5.jpg", messi},
                          {"truncated.jpg", truncated},
                          {"bomb.png", bomb},
                          {"huge.jpg", huge_jpeg},
                          {"not-an-image.gif", gif}});
}

void ExpectHostileReport(const nlohmann::json& report) {
  const nlohmann::json& images = report["images"];
  ASSERT_EQ(images.size(), 5u);
  ExpectNear(images[0], Reference()["images"][0], "messi5");
  const std::vector<std::pair<std::string, std::string>> errors = {
      {"truncated.jpg", "JPEG: Premature end of JPEG file"},
      {"bomb.png", "PNG: declared size 30000x30000 is beyond the limit"},
      {"huge.jpg", "JPEG: declared size 60000x60000 is beyond the limit"},
      {"not-an-image.gif", "not a JPEG or PNG image"}};
  for (size_t i = 0; i < errors.size(); ++i) {
    SCOPED_TRACE(errors[i].first);
    EXPECT_EQ(images[i + 1]["name"], errors[i].first);
    ASSERT_TRUE(images[i + 1].contains("error"));
    EXPECT_NE(images[i + 1]["error"].get<std::string>().find(errors[i].second), std::string::npos)
        << images[i + 1]["error"];
    EXPECT_FALSE(images[i + 1].contains("detections"));
  }
}

TEST(ObjectDetectionHostileTest, HostileImagesFailAloneWithTheirReason) {
  const Bytes batch = HostileBatch();
  const AppRun run = RunApp(Manifest(kParameters, false), {{"images", batch}});
  ASSERT_EQ(run.exit_code, 0) << run.error;
  ASSERT_TRUE(run.detections.has_value());
  ExpectHostileReport(*run.detections);
  ASSERT_TRUE(run.outcome.has_value());
  EXPECT_EQ((*run.outcome)["counts"]["images"], 5);
  EXPECT_EQ((*run.outcome)["counts"]["failed"], 4);
  auto annotated = ParseBatch(*run.annotated);
  ASSERT_TRUE(annotated.has_value());
  ASSERT_EQ(annotated->size(), 1u);
  EXPECT_EQ(annotated->front().name, "messi5.jpg");
  // The CLI reports the same, and exits 1.
  TempDir dir("objdet-hostile");
  const std::string path = (dir.path() / "hostile.batch").string();
  ASSERT_TRUE(WriteFileAtomic(path, batch).has_value());
  int exit_code = 0;
  const nlohmann::json cli = CliDetect({path}, &exit_code);
  EXPECT_EQ(exit_code, 1);
  EXPECT_EQ(cli, *run.detections);
}

TEST(ObjectDetectionHostileTest, AppFailsClosedNamingTheCause) {
  const Bytes messi = Sample("messi5.jpg");
  struct Case {
    std::string name;
    nlohmann::json manifest;
    std::map<std::string, Bytes> inputs;
    std::string reason;
  };
  nlohmann::json no_parameters = Manifest(kParameters, false);
  no_parameters["app"].erase("parameters");
  nlohmann::json unknown = kParameters;
  unknown["colour"] = "red";
  nlohmann::json with_model = kParameters;
  with_model["model_party"] = "model-owner";
  nlohmann::json yolo = kParameters;
  yolo["detectors"] = {"yolo"};
  nlohmann::json third = Manifest(kParameters, false);
  third["parties"].push_back({{"id", "eve"}, {"key_arn", "arn:aws:kms:us-east-1:333:key/e"}});
  // One byte of the pinned model's graph changed (found by mutating it): OpenCV 4.6's importer
  // reads out of bounds and crashes on it.
  Bytes crashing_model = Model();
  ASSERT_GT(crashing_model.size(), 828u);
  crashing_model[828] = 178;
  const std::vector<Case> cases = {
      {"no parameters", no_parameters, {{"images", messi}}, "app.parameters must be an object"},
      {"unknown parameter",
       Manifest(unknown, false),
       {{"images", messi}},
       "app.parameters.colour is unknown"},
      {"annotated output not declared",
       Manifest(kParameters, false, false),
       {{"images", messi}},
       "app.outputs must declare exactly \"detections\" and \"annotated\""},
      {"a third party",
       third,
       {{"images", messi}, {"eve", messi}},
       "party 'eve' is neither app.parameters.image_party nor model_party"},
      {"unknown detector", Manifest(yolo, false), {{"images", messi}}, "unknown detector 'yolo'"},
      {"model owner's model is not ONNX",
       Manifest(with_model, true),
       {{"images", messi}, {"model-owner", ToBytes("SECRET-MODEL-BYTES")}},
       "model from party 'model-owner': the model is not an ONNX model OpenCV 4.6 can load"},
      {"model owner's model crafted to crash OpenCV's ONNX importer",
       Manifest(with_model, true),
       {{"images", messi}, {"model-owner", crashing_model}},
       "model from party 'model-owner': the model crashed OpenCV's ONNX importer (signal 11); "
       "refused"},
      {"images input is neither a batch nor an image",
       Manifest(kParameters, false),
       {{"images", ToBytes("hello")}},
       "image party 'images': input is neither an image batch"},
      {"images input missing", Manifest(kParameters, false), {}, "image party 'images'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const AppRun run = RunApp(c.manifest, c.inputs);
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_NE(run.error.find(c.reason), std::string::npos) << run.error;
    EXPECT_EQ(run.error.find("SECRET"), std::string::npos) << run.error;
    EXPECT_EQ(run.files, std::vector<std::string>{"error"});
  }
}

// An image within the decoder's limits (31 megapixels of zeros: 94 MB of pixels from a 92 KB
// PNG) but beyond what the app may allocate (an address-space limit of 256 MiB, as
// app.memory_mib sets in the enclave): that image fails with the reason, the next one is
// detected, the run succeeds.
TEST(ObjectDetectionHostileTest, AnImageBeyondTheAppsMemoryFailsAlone) {
  constexpr uint32_t kSide = 5600;
  Bytes zeros(size_t{kSide} * (1 + kSide * 3), 0);
  Bytes big = PngHeader(kSide, kSide);
  Append(big, PngChunk("IDAT", Deflate(zeros)));
  Append(big, PngChunk("IEND", {}));
  zeros = {};
  const Bytes messi = Sample("messi5.jpg");
  const Bytes batch = *SerializeBatch({{"big.png", big}, {"messi5.jpg", messi}});
  nlohmann::json parameters = kParameters;
  parameters["detectors"] = {"blazeface"};
  // prlimit: util-linux (scripts/packages.txt).
  const AppRun run = RunApp(Manifest(parameters, false), {{"images", batch}}, true,
                            {"/usr/bin/prlimit", "--as=268435456", "--"});
  ASSERT_EQ(run.exit_code, 0) << run.error;
  ASSERT_TRUE(run.detections.has_value());
  const nlohmann::json& images = (*run.detections)["images"];
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(images[0]["error"], "not enough memory for this image (5600x5600)");
  ASSERT_TRUE(images[1].contains("detections"));
  ASSERT_FALSE(images[1]["detections"].empty());
  EXPECT_EQ(images[1]["detections"][0]["label"], "face");
  EXPECT_EQ((*run.outcome)["counts"]["failed"], 1);
}

}  // namespace
}  // namespace cloister::objdet
