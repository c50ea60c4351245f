# The enclave's NSM clients (emulated channel, real /dev/nsm) over the codec in formats/nsm.h;
# see docs/nsm.md.
cloister_library(NAME nsm SOURCES ${CMAKE_CURRENT_LIST_DIR}/nsm.cc
  DEPS cloister::formats cloister::common)
