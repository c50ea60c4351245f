# The operator's side of enclaves: building images (image_builder) and the launcher/monitor
# behind `cloister run-enclave` (sandbox, emulated NSM, console, state); docs/eif.md, docs/nsm.md.
cloister_library(NAME launcher
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_builder.cc
  DEPS cloister::common cloister::eif cloister::nsm)
