#include "tests/support/probe_client.h"

#include "common/unique_fd.h"

namespace cloister::testing {

namespace frames = formats::frames;

const cbor_item_t* MapGet(const cbor_item_t* map, std::string_view key) {
  if (map == nullptr || !cbor_isa_map(map)) return nullptr;
  cbor_pair* pairs = cbor_map_handle(map);
  for (size_t i = 0; i < cbor_map_size(map); ++i) {
    if (cbor_isa_string(pairs[i].key) && cbor_string_is_definite(pairs[i].key) &&
        std::string_view(reinterpret_cast<const char*>(cbor_string_handle(pairs[i].key)),
                         cbor_string_length(pairs[i].key)) == key) {
      return pairs[i].value;
    }
  }
  return nullptr;
}

CborPtr NewMapRequest(std::string_view type) {
  CborPtr map(cbor_new_indefinite_map());
  (void)CborMapAdd(map.get(), CborText("type"), CborText(type));
  return map;
}

Result<CborPtr> CallMap(const vsock::Transport& transport, vsock::Address address,
                        const cbor_item_t* request) {
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, transport.Connect(address));
  CLOISTER_ASSIGN_OR_RETURN(Bytes payload, EncodeCbor(request));
  CLOISTER_RETURN_IF_ERROR(frames::WriteFrame(fd.get(), payload));
  CLOISTER_ASSIGN_OR_RETURN(SecureVector reply, frames::ReadFrame(fd.get()));
  // Error frames come from the production server: read them with the codec.
  if (auto response = frames::DecodeResponse(reply); response) {
    if (auto* e = std::get_if<frames::ErrorResponse>(&*response)) {
      return frames::FromErrorResponse(*e);
    }
  }
  return DecodeCbor(reply);
}

Result<frames::Response> CallEnclave(const vsock::Transport& transport, vsock::Address address,
                                     const frames::Request& request) {
  CLOISTER_ASSIGN_OR_RETURN(UniqueFd fd, transport.Connect(address));
  frames::FrameConnection conn(fd.get());
  return conn.Call(request);
}

}  // namespace cloister::testing
