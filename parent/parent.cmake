# `cloister-parent`: the operator's process beside a running enclave. It talks to the enclave
# runtime's request server over vsock (enclave/rpc.h frames).
cloister_executable(NAME cloister-parent
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/parent_main.cc
  DEPS cloister::enclave_runtime cloister::formats cloister::common)
target_compile_definitions(cloister-parent PRIVATE CLOISTER_VERSION="${PROJECT_VERSION}")
install(TARGETS cloister-parent RUNTIME DESTINATION bin)
