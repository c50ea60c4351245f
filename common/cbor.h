// RAII and strict helpers for libcbor.
//
// CborPtr owns one reference to a cbor_item_t. DecodeCbor refuses trailing bytes; map helpers
// refuse duplicate keys. Thread safety: values only.
#ifndef CLOISTER_COMMON_CBOR_H_
#define CLOISTER_COMMON_CBOR_H_

#include <cbor.h>

#include <memory>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace cloister {

struct CborDecref {
  void operator()(cbor_item_t* item) const { cbor_decref(&item); }
};
using CborPtr = std::unique_ptr<cbor_item_t, CborDecref>;

// Returns a new reference to `item` (incref) wrapped in a CborPtr.
inline CborPtr CborShare(cbor_item_t* item) { return CborPtr(cbor_incref(item)); }

// Decodes exactly one CBOR data item from `data`. Note: libcbor 0.8 (Debian 12) refuses tags
// 6..20 in their one-byte form (e.g. 0xd2, COSE_Sign1's tag 18) as "unassigned"; a caller that
// accepts such a tag at the top level must strip it before calling. kMalformed on a decode error, on trailing
// bytes, or if it nests deeper than `max_depth`.
Result<CborPtr> DecodeCbor(ByteSpan data, size_t max_depth = 16);

// Serializes `item` to bytes. kInternal if libcbor cannot.
Result<Bytes> EncodeCbor(const cbor_item_t* item);

// Builders that return owned items; they abort only on allocation failure (as libcbor does).
CborPtr CborBytes(ByteSpan b);
CborPtr CborText(std::string_view s);
CborPtr CborUint(uint64_t v);
CborPtr CborNull();
// Adds `key` → `value` to a map (definite or indefinite). kInternal if libcbor refuses.
Status CborMapAdd(cbor_item_t* map, CborPtr key, CborPtr value);
Status CborArrayPush(cbor_item_t* array, CborPtr value);

// Simple values, safe on any item. libcbor 0.8's cbor_is_null/cbor_is_bool (and cbor_get_bool
// through them) assert, aborting the process, when handed a half, single or double float: never
// call them on untrusted items, call these.
bool CborIsNull(const cbor_item_t* item);
bool CborIsBool(const cbor_item_t* item);

// Overwrites with zeros the contents of every byte and text string in `item` and below (map
// keys and values, array elements, tagged items, indefinite-length chunks), so secrets that
// passed through a decoded tree do not outlive it in freed memory. Call before releasing an
// item that may have carried secrets. Sizes and structure are left as they are.
void CborWipe(cbor_item_t* item);

// Views (valid while the item lives).
Result<ByteSpan> CborAsBytes(const cbor_item_t* item, std::string_view what);
Result<std::string_view> CborAsText(const cbor_item_t* item, std::string_view what);
Result<uint64_t> CborAsUint(const cbor_item_t* item, std::string_view what);

}  // namespace cloister

#endif  // CLOISTER_COMMON_CBOR_H_
