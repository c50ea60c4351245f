# The enclave runtime: the frame server and boot steps (library enclave_runtime) and the
# `cloister-enclave` executable, which `cloister build-enclave` packs as the image's kernel
# section. The executable must be reproducible: it is linked without debug sections or build
# paths (stripped, no RPATH) so two build directories give the same bytes (docs/eif.md
# "Reproducible builds"); its shared libraries travel in the image's bootstrap ramdisk.
cloister_library(NAME enclave_runtime
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/frame_server.cc ${CMAKE_CURRENT_LIST_DIR}/boot.cc
          ${CMAKE_CURRENT_LIST_DIR}/enclave_session.cc
  DEPS cloister::enclave_core cloister::common cloister::nsm)

# Keeps build paths out of a binary: source and build directories map to fixed names in
# __FILE__ and debug information.
function(cloister_reproducible target)
  target_compile_options(${target} PRIVATE
    -ffile-prefix-map=${PROJECT_SOURCE_DIR}=/cloister
    -ffile-prefix-map=${PROJECT_BINARY_DIR}=/cloister-build)
endfunction()
foreach(t cloister_enclave_runtime cloister_nsm cloister_enclave_kms cloister_enclave_core
          cloister_formats cloister_kms_client cloister_kms_api)
  cloister_reproducible(${t})
endforeach()

cloister_executable(NAME cloister-enclave
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/main.cc
  DEPS cloister::enclave_kms cloister::enclave_runtime cloister::nsm cloister::common)
cloister_reproducible(cloister-enclave)
target_link_options(cloister-enclave PRIVATE -s -Wl,--build-id=sha1)
set_target_properties(cloister-enclave PROPERTIES SKIP_BUILD_RPATH ON)
# Installed beside the commands' bin/ as lib/cloister/cloister-enclave, where `cloister
# build-enclave` looks for it (parent::DefaultRuntimePath); not on PATH, since it is the image's
# kernel section, not a command. Copied byte for byte (no RPATH to rewrite, already stripped), so
# an installed tree measures the same PCRs as the build tree.
install(TARGETS cloister-enclave RUNTIME DESTINATION lib/cloister)
