#include "enclave/computation.h"

namespace cloister::enclave {

Status ComputationRegistry::Add(ComputationEntry entry) {
  if (!formats::IsValidId(entry.name)) {
    return Error::InvalidArgument("computation name '" + entry.name.substr(0, 64) +
                                  "' is invalid");
  }
  if (Find(entry.name) != nullptr) {
    return Error::InvalidArgument("computation '" + entry.name + "' is registered twice");
  }
  if (!entry.shape.section_key.empty() && !formats::IsValidId(entry.shape.section_key)) {
    return Error::InvalidArgument("computation '" + entry.name + "' has a bad section key");
  }
  if (static_cast<bool>(entry.create) != entry.shape.takes_inputs) {
    return Error::InvalidArgument("computation '" + entry.name +
                                  "': a factory is needed exactly when it takes inputs");
  }
  entries_.push_back(std::move(entry));
  return OkStatus();
}

const ComputationEntry* ComputationRegistry::Find(std::string_view name) const {
  for (const auto& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

namespace {

Error UnknownComputation(std::string_view name) {
  // A name from the manifest: bounded, as every echo of it.
  return Error::Malformed("manifest names unknown computation '" +
                          std::string(name.substr(0, formats::kMaxIdBytes)) + "'");
}

}  // namespace

Result<formats::Manifest> ComputationRegistry::ParseManifest(ByteSpan json) const {
  return formats::ParseManifest(
      json, [this](std::string_view computation) -> Result<formats::ManifestShape> {
        const ComputationEntry* e = Find(computation);
        if (e == nullptr) return UnknownComputation(computation);
        return e->shape;
      });
}

Result<std::unique_ptr<Computation>> ComputationRegistry::Create(
    const formats::Manifest& manifest) const {
  const ComputationEntry* e = Find(manifest.computation);
  if (e == nullptr) return UnknownComputation(manifest.computation);
  if (!e->create) {
    return Error::InvalidArgument("computation '" + e->name + "' takes no inputs");
  }
  // A manifest parsed without this table (formats::ParseManifest's host mode) may hold another
  // section than the computation's.
  if (manifest.section_key != e->shape.section_key) {
    if (!manifest.section_key.empty()) {
      return Error::Malformed("manifest has unknown field '" + manifest.section_key + "'");
    }
    return Error::Malformed("manifest " + e->shape.section_key +
                            " section is missing or not an object");
  }
  return e->create(manifest, manifest.section);
}

Result<formats::Manifest> ComputationRegistry::CheckManifest(ByteSpan json) const {
  CLOISTER_ASSIGN_OR_RETURN(formats::Manifest manifest, ParseManifest(json));
  if (const ComputationEntry* e = Find(manifest.computation); e != nullptr && e->create) {
    CLOISTER_ASSIGN_OR_RETURN(std::unique_ptr<Computation> c, Create(manifest));
    (void)c;
  }
  return manifest;
}

}  // namespace cloister::enclave
