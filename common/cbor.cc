#include "common/cbor.h"

#include <sodium.h>

#include <cstdlib>
#include <limits>
#include <vector>

namespace cloister {
namespace {

// Structure pre-scan. libcbor's cbor_load builds the tree without a depth limit and frees it
// recursively, and it allocates containers at their declared size before reading them. So before
// building we walk the item heads with libcbor's streaming decoder, tracking open containers, to
// refuse excessive nesting and element counts that the remaining input cannot hold.
constexpr uint64_t kIndefinite = std::numeric_limits<uint64_t>::max();

struct ScanState {
  std::vector<uint64_t> open;  // remaining children per open container, or kIndefinite
  size_t max_depth = 0;
  size_t bytes_left = 0;       // bytes after the current head, to bound declared sizes
  bool pending_tag = false;
  bool failed = false;
  bool started = false;

  void Child() {
    started = true;
    if (pending_tag) {
      pending_tag = false;
      return;
    }
    if (!open.empty() && open.back() != kIndefinite) --open.back();
  }
  void Close() {
    while (!open.empty() && open.back() == 0) open.pop_back();
  }
  void Leaf() {
    Child();
    Close();
  }
  void Open(uint64_t children) {
    Child();
    if (children != kIndefinite && children > bytes_left) {
      failed = true;
      return;
    }
    open.push_back(children);
    if (open.size() > max_depth) failed = true;
    Close();
  }
};

ScanState* S(void* ctx) { return static_cast<ScanState*>(ctx); }

cbor_callbacks ScanCallbacks() {
  cbor_callbacks cb = cbor_empty_callbacks;
  cb.uint8 = [](void* c, uint8_t) { S(c)->Leaf(); };
  cb.uint16 = [](void* c, uint16_t) { S(c)->Leaf(); };
  cb.uint32 = [](void* c, uint32_t) { S(c)->Leaf(); };
  cb.uint64 = [](void* c, uint64_t) { S(c)->Leaf(); };
  cb.negint8 = [](void* c, uint8_t) { S(c)->Leaf(); };
  cb.negint16 = [](void* c, uint16_t) { S(c)->Leaf(); };
  cb.negint32 = [](void* c, uint32_t) { S(c)->Leaf(); };
  cb.negint64 = [](void* c, uint64_t) { S(c)->Leaf(); };
  cb.byte_string = [](void* c, cbor_data, size_t) { S(c)->Leaf(); };
  cb.string = [](void* c, cbor_data, size_t) { S(c)->Leaf(); };
  cb.byte_string_start = [](void* c) { S(c)->Open(kIndefinite); };
  cb.string_start = [](void* c) { S(c)->Open(kIndefinite); };
  cb.indef_array_start = [](void* c) { S(c)->Open(kIndefinite); };
  cb.indef_map_start = [](void* c) { S(c)->Open(kIndefinite); };
  cb.array_start = [](void* c, size_t n) { S(c)->Open(n); };
  cb.map_start = [](void* c, size_t n) {
    S(c)->Open(n > std::numeric_limits<uint64_t>::max() / 2 ? kIndefinite - 1 : 2 * n);
  };
  cb.tag = [](void* c, uint64_t) {
    ScanState* s = S(c);
    if (s->pending_tag) {  // nested tags count as depth too
      s->failed = s->failed || s->open.size() + 1 > s->max_depth;
    }
    if (!s->pending_tag) s->Child();
    s->started = true;
    s->pending_tag = true;
  };
  cb.float2 = [](void* c, float) { S(c)->Leaf(); };
  cb.float4 = [](void* c, float) { S(c)->Leaf(); };
  cb.float8 = [](void* c, double) { S(c)->Leaf(); };
  cb.undefined = [](void* c) { S(c)->Leaf(); };
  cb.null = [](void* c) { S(c)->Leaf(); };
  cb.boolean = [](void* c, bool) { S(c)->Leaf(); };
  cb.indef_break = [](void* c) {
    ScanState* s = S(c);
    if (s->open.empty() || s->open.back() != kIndefinite) {
      s->failed = true;
      return;
    }
    s->open.pop_back();
    s->Close();
  };
  return cb;
}

// Returns the length of the first complete item in `data`.
Result<size_t> ScanOneItem(ByteSpan data, size_t max_depth) {
  static const cbor_callbacks kCallbacks = ScanCallbacks();
  ScanState state;
  state.max_depth = max_depth;
  size_t offset = 0;
  while (true) {
    if (offset >= data.size()) return Error::Malformed("CBOR: truncated input");
    // The tag callback above counts a tagged item once; a pending tag with no following
    // item is caught as truncation.
    state.bytes_left = data.size() - offset - 1;  // the head itself takes at least one byte
    cbor_decoder_result r =
        cbor_stream_decode(data.data() + offset, data.size() - offset, &kCallbacks, &state);
    if (r.status == CBOR_DECODER_NEDATA) return Error::Malformed("CBOR: truncated input");
    if (r.status != CBOR_DECODER_FINISHED) return Error::Malformed("CBOR: invalid encoding");
    offset += r.read;
    if (state.failed) {
      return Error::Malformed("CBOR: nesting too deep, bad break or count exceeds input");
    }
    if (state.started && state.open.empty() && !state.pending_tag) return offset;
  }
}

}  // namespace

Result<CborPtr> DecodeCbor(ByteSpan data, size_t max_depth) {
  CLOISTER_ASSIGN_OR_RETURN(size_t item_len, ScanOneItem(data, max_depth));
  if (item_len != data.size()) return Error::Malformed("CBOR: trailing bytes after item");
  cbor_load_result result{};
  CborPtr item(cbor_load(data.data(), data.size(), &result));
  if (!item || result.error.code != CBOR_ERR_NONE) {
    return Error::Malformed("CBOR: decode failed at byte " + std::to_string(result.error.position));
  }
  if (result.read != data.size()) return Error::Malformed("CBOR: trailing bytes after item");
  return item;
}

Result<Bytes> EncodeCbor(const cbor_item_t* item) {
  unsigned char* buf = nullptr;
  size_t buf_size = 0;
  size_t len = cbor_serialize_alloc(item, &buf, &buf_size);
  if (len == 0 || buf == nullptr) {
    std::free(buf);
    return Error::Internal("CBOR: serialization failed");
  }
  Bytes out(buf, buf + len);
  std::free(buf);
  return out;
}

CborPtr CborBytes(ByteSpan b) {
  return CborPtr(cbor_build_bytestring(b.data(), b.size()));
}
CborPtr CborText(std::string_view s) {
  return CborPtr(cbor_build_stringn(s.data(), s.size()));
}
CborPtr CborUint(uint64_t v) {
  if (v <= 0xff) return CborPtr(cbor_build_uint8(static_cast<uint8_t>(v)));
  if (v <= 0xffff) return CborPtr(cbor_build_uint16(static_cast<uint16_t>(v)));
  if (v <= 0xffffffffu) return CborPtr(cbor_build_uint32(static_cast<uint32_t>(v)));
  return CborPtr(cbor_build_uint64(v));
}
CborPtr CborNull() { return CborPtr(cbor_new_null()); }

namespace {
// A major type 7 item that is a simple value (width 0) rather than a float, which is all that
// cbor_ctrl_value accepts.
bool IsSimpleValue(const cbor_item_t* item) {
  return item != nullptr && cbor_isa_float_ctrl(item) && cbor_float_get_width(item) == CBOR_FLOAT_0;
}
}  // namespace

bool CborIsNull(const cbor_item_t* item) {
  return IsSimpleValue(item) && cbor_ctrl_value(item) == CBOR_CTRL_NULL;
}

bool CborIsBool(const cbor_item_t* item) {
  return IsSimpleValue(item) &&
         (cbor_ctrl_value(item) == CBOR_CTRL_TRUE || cbor_ctrl_value(item) == CBOR_CTRL_FALSE);
}

Status CborMapAdd(cbor_item_t* map, CborPtr key, CborPtr value) {
  if (!key || !value) return Error::Internal("CBOR: allocation failed");
  if (!cbor_map_add(map, cbor_pair{.key = key.get(), .value = value.get()})) {
    return Error::Internal("CBOR: map add failed");
  }
  return OkStatus();  // the map took its own references
}

Status CborArrayPush(cbor_item_t* array, CborPtr value) {
  if (!value) return Error::Internal("CBOR: allocation failed");
  if (!cbor_array_push(array, value.get())) return Error::Internal("CBOR: array push failed");
  return OkStatus();
}

Result<ByteSpan> CborAsBytes(const cbor_item_t* item, std::string_view what) {
  if (!cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item)) {
    return Error::Malformed(std::string(what) + ": expected a definite byte string");
  }
  return ByteSpan(cbor_bytestring_handle(item), cbor_bytestring_length(item));
}

Result<std::string_view> CborAsText(const cbor_item_t* item, std::string_view what) {
  if (!cbor_isa_string(item) || !cbor_string_is_definite(item)) {
    return Error::Malformed(std::string(what) + ": expected a definite text string");
  }
  return std::string_view(reinterpret_cast<const char*>(cbor_string_handle(item)),
                          cbor_string_length(item));
}

Result<uint64_t> CborAsUint(const cbor_item_t* item, std::string_view what) {
  if (!cbor_isa_uint(item)) return Error::Malformed(std::string(what) + ": expected uint");
  return cbor_get_int(item);
}

void CborWipe(cbor_item_t* item) {
  if (item == nullptr) return;
  // Iterative: a decoded tree is depth-bounded, but this must not depend on it.
  std::vector<cbor_item_t*> todo = {item};
  while (!todo.empty()) {
    cbor_item_t* it = todo.back();
    todo.pop_back();
    switch (cbor_typeof(it)) {
      case CBOR_TYPE_BYTESTRING:
        if (cbor_bytestring_is_definite(it)) {
          if (cbor_bytestring_handle(it) != nullptr) {
            sodium_memzero(cbor_bytestring_handle(it), cbor_bytestring_length(it));
          }
        } else {
          cbor_item_t** chunks = cbor_bytestring_chunks_handle(it);
          for (size_t i = 0; i < cbor_bytestring_chunk_count(it); ++i) todo.push_back(chunks[i]);
        }
        break;
      case CBOR_TYPE_STRING:
        if (cbor_string_is_definite(it)) {
          if (cbor_string_handle(it) != nullptr) {
            sodium_memzero(cbor_string_handle(it), cbor_string_length(it));
          }
        } else {
          cbor_item_t** chunks = cbor_string_chunks_handle(it);
          for (size_t i = 0; i < cbor_string_chunk_count(it); ++i) todo.push_back(chunks[i]);
        }
        break;
      case CBOR_TYPE_ARRAY: {
        cbor_item_t** items = cbor_array_handle(it);
        for (size_t i = 0; i < cbor_array_size(it); ++i) todo.push_back(items[i]);
        break;
      }
      case CBOR_TYPE_MAP: {
        cbor_pair* pairs = cbor_map_handle(it);
        for (size_t i = 0; i < cbor_map_size(it); ++i) {
          todo.push_back(pairs[i].key);
          todo.push_back(pairs[i].value);
        }
        break;
      }
      case CBOR_TYPE_TAG:
        if (cbor_tag_item(it) != nullptr) {
          // cbor_tag_item increfs; the tree keeps its own reference.
          cbor_item_t* tagged = cbor_tag_item(it);
          todo.push_back(tagged);
          cbor_decref(&tagged);
        }
        break;
      default:
        break;
    }
  }
}

}  // namespace cloister
