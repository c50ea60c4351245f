// Test support: talking to an enclave runtime from tests, beside the production codec.
//
//  - CallEnclave sends one formats/frames.h request (the one codec) on a connection of its own.
//  - The isolation probe (tests/enclave/isolation_probe.cc) answers test-only request types
//    (probe, write-file, alloc, ...) that are loose CBOR maps {"type": text, ...}: the probe
//    decodes them itself behind its frame server's test fallback, and they never reach the
//    production codec. CallMap sends such a map, encoded exactly as built (a hostile test can
//    send an indefinite or non-canonical map the same way), and returns the reply map; an
//    `error` frame becomes an Error.
//
// Thread safety: functions only.
#ifndef CLOISTER_TESTS_SUPPORT_PROBE_CLIENT_H_
#define CLOISTER_TESTS_SUPPORT_PROBE_CLIENT_H_

#include <string_view>

#include "common/cbor.h"
#include "common/result.h"
#include "common/vsock.h"
#include "formats/frames.h"

namespace cloister::testing {

// Returns the value of text key `key` in `map` (any map), or nullptr. The pointer lives as long
// as `map`.
const cbor_item_t* MapGet(const cbor_item_t* map, std::string_view key);

// Returns a request map {"type": type} (indefinite length) to which callers add fields.
CborPtr NewMapRequest(std::string_view type);

// Sends `request` as one frame to `address` and returns the reply map. An `error` reply becomes
// an Error with its code and message; kUnavailable if the enclave closed the connection.
Result<CborPtr> CallMap(const vsock::Transport& transport, vsock::Address address,
                        const cbor_item_t* request);

// Sends `request` to `address` with the frame codec and returns the reply; an `error` reply
// becomes an Error with its code and message.
Result<formats::frames::Response> CallEnclave(const vsock::Transport& transport,
                                              vsock::Address address,
                                              const formats::frames::Request& request);

}  // namespace cloister::testing

#endif  // CLOISTER_TESTS_SUPPORT_PROBE_CLIENT_H_
