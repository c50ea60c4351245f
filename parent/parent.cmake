# `cloister-parent`: the operator's process beside a running enclave. It talks to the enclave
# runtime's frame server over vsock, with the one frame codec (formats/frames.h).
cloister_executable(NAME cloister-parent
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/parent_main.cc
  DEPS cloister::formats cloister::common)
target_compile_definitions(cloister-parent PRIVATE CLOISTER_VERSION="${PROJECT_VERSION}")
install(TARGETS cloister-parent RUNTIME DESTINATION bin)
