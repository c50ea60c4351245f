# The emulated platform's on-disk state (state directory, 0600 keys, XDG default).
cloister_library(NAME platform
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/platform_store.cc
  DEPS cloister::attestation cloister::common)
