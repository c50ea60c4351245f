// Test support for examples/object-detection's end-to-end tests (tests/examples/
// object_detection_test.cc, tests/adversarial/objdet_hostile_test.cc): the pinned model, the
// reference detections and their comparison, the host CLI, and the app run on the host in the
// docs/apps.md layout.
//
// Thread safety: the functions are thread-safe (each run has its own temporary directory).
#ifndef CLOISTER_TESTS_EXAMPLES_OBJDET_APP_RUN_H_
#define CLOISTER_TESTS_EXAMPLES_OBJDET_APP_RUN_H_

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.h"

namespace cloister::objdet::testing {

inline constexpr const char* kModelFile = "face_detection_back_256x256_barracuda.onnx";
inline constexpr const char* kDetectors = "blazeface,hog-people,haar-frontalface";
// The opencv-doc images of the reference, in its order.
extern const std::vector<std::string> kImages;
// app.parameters running the three detectors of the reference, counts public.
extern const nlohmann::json kParameters;

// The BlazeFace model npm ci installs (examples/object-detection/model).
std::string ModelPath();
// Its bytes; a test failure naming `npm ci` if it is missing.
Bytes Model();
// build/examples/object-detection/object-detect.
std::string Cli();
// kImages' paths.
std::vector<std::string> SamplePaths();
// kImages as an image batch.
Bytes SampleBatch();
// tests/examples/object_detection_reference.json.
nlohmann::json Reference();

// Compares `got` with `want` (gtest expectations): the same structure, strings and integers;
// scores within 1e-4 and every other number (boxes, keypoints) within a pixel.
void ExpectNear(const nlohmann::json& got, const nlohmann::json& want, const std::string& path);

// Runs `object-detect detect --model ModelPath() --detectors kDetectors extra...`; returns its
// report. With `exit_code` null a non-zero exit is a test failure, else it is stored there.
nlohmann::json CliDetect(const std::vector<std::string>& extra, int* exit_code = nullptr);

// A manifest for the app: party "images" (and "model-owner"), outputs "detections" (and
// "annotated") to "images", `parameters`.
nlohmann::json Manifest(const nlohmann::json& parameters, bool model_party, bool annotate = true);

struct AppRun {
  int exit_code = -1;
  std::optional<nlohmann::json> outcome;
  std::string error;
  std::vector<std::string> files;  // the regular files in outputs, sorted
  std::optional<nlohmann::json> detections;
  std::optional<Bytes> annotated;
  double seconds = 0;
};

// Runs the app in the docs/apps.md layout, as /app would hold it: the binary and (if
// `model_in_image`) the model beside it. `inputs` are by party id. `wrapper` goes before the
// app's path on the command line (e.g. prlimit --as=N --).
AppRun RunApp(const nlohmann::json& manifest, const std::map<std::string, Bytes>& inputs,
              bool model_in_image = true, const std::vector<std::string>& wrapper = {});

}  // namespace cloister::objdet::testing

#endif  // CLOISTER_TESTS_EXAMPLES_OBJDET_APP_RUN_H_
