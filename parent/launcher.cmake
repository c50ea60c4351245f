# The operator's side of enclaves: building images (image_builder), and the launcher/monitor
# behind `cloister run-enclave` (sandbox, emulated NSM service, console, state); docs/eif.md,
# docs/nsm.md, docs/threat-model.md.
cloister_library(NAME launcher
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/image_builder.cc
          ${CMAKE_CURRENT_LIST_DIR}/app_image.cc
          ${CMAKE_CURRENT_LIST_DIR}/runtime_check.cc
          ${CMAKE_CURRENT_LIST_DIR}/nsm_service.cc
          ${CMAKE_CURRENT_LIST_DIR}/sandbox.cc
          ${CMAKE_CURRENT_LIST_DIR}/launcher.cc
          ${CMAKE_CURRENT_LIST_DIR}/vsock_broker.cc
  DEPS cloister::common cloister::eif cloister::formats cloister::attestation cloister::platform
       PkgConfig::SECCOMP)
