#include "attestation/measurements.h"

#include <algorithm>

#include "attestation/attestation_doc.h"
#include "common/file.h"
#include "common/json.h"

namespace cloister::attestation {
namespace {

// "PCR<n>", n decimal 0..kMaxPcrIndex without leading zeros.
bool ParsePcrKey(std::string_view key, uint32_t& index) {
  if (key.size() < 4 || key.size() > 5 || key.substr(0, 3) != "PCR") return false;
  std::string_view digits = key.substr(3);
  if (digits.size() > 1 && digits[0] == '0') return false;
  uint32_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n > kMaxPcrIndex) return false;
  index = n;
  return true;
}

}  // namespace

bool ImageMeasurements::IsDebug() const {
  for (uint32_t i : {0u, 1u, 2u}) {
    auto it = pcrs.find(i);
    if (it != pcrs.end() &&
        std::all_of(it->second.begin(), it->second.end(), [](uint8_t b) { return b == 0; })) {
      return true;
    }
  }
  return false;
}

Result<ImageMeasurements> ParseMeasurements(std::string_view text) {
  if (text.size() > kMaxMeasurementsFileBytes) {
    return Error::Malformed("measurements: larger than " +
                            std::to_string(kMaxMeasurementsFileBytes) + " bytes");
  }
  auto parsed = ParseStrictJson(text, kMaxJsonDepth);
  if (!parsed) return parsed.error().WithContext("measurements: not JSON");
  const nlohmann::json* m = &*parsed;
  if (!m->is_object()) return Error::Malformed("measurements: not a JSON object");
  if (auto it = m->find("Measurements"); it != m->end()) m = &*it;
  if (!m->is_object()) return Error::Malformed("measurements: \"Measurements\" is not an object");
  ImageMeasurements out;
  for (const auto& [key, value] : m->items()) {
    if (key == "HashAlgorithm") {
      // nitro-cli prints the Rust Debug form "Sha384 { ... }".
      if (!value.is_string() || value.get<std::string>().rfind("Sha384", 0) != 0) {
        return Error::Malformed("measurements: HashAlgorithm must be Sha384");
      }
      continue;
    }
    uint32_t index = 0;
    if (!ParsePcrKey(key, index)) {
      return Error::Malformed("measurements: unknown member \"" + key.substr(0, 32) +
                              "\" (expected HashAlgorithm and PCR0..PCR31)");
    }
    if (!value.is_string()) return Error::Malformed("measurements: " + key + " is not a string");
    const std::string& hex = value.get_ref<const std::string&>();
    auto bytes = HexDecode(hex);
    if (hex.size() != 2 * kPcrLengthSha384 || !bytes) {
      return Error::Malformed("measurements: " + key + " must be " +
                              std::to_string(2 * kPcrLengthSha384) +
                              " hex digits (a SHA-384 value), got " + std::to_string(hex.size()) +
                              (bytes ? " digits" : " characters that are not all hex"));
    }
    out.pcrs[index] = std::move(*bytes);
  }
  for (uint32_t required : {0u, 1u, 2u}) {
    if (!out.pcrs.count(required)) {
      return Error::Malformed("measurements: PCR" + std::to_string(required) +
                              " is missing (PCR0, PCR1 and PCR2 are required)");
    }
  }
  return out;
}

Result<ImageMeasurements> ReadMeasurementsFile(const std::string& path) {
  auto text = ReadTextFile(path, kMaxMeasurementsFileBytes);
  if (!text) return text.error();  // names the path already
  auto m = ParseMeasurements(*text);
  if (!m) return m.error().WithContext(path);
  return m;
}

}  // namespace cloister::attestation
