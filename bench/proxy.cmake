# cloister-proxy benchmark: the sender/receiver/echo tool driven by bench/proxy_bench.sh.
cloister_executable(NAME cloister-proxy-bench-tool
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/proxy_bench_tool.cc
  DEPS cloister::common CLI11::CLI11 Threads::Threads)
