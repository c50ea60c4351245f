# cloister-proxy: the vsock-proxy-compatible relay (issue 5). Library: allowlist, resolver, relay.
find_library(CLOISTER_RESOLV_LIB resolv REQUIRED)
cloister_library(NAME proxy
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/allowlist.cc ${CMAKE_CURRENT_LIST_DIR}/resolver.cc
          ${CMAKE_CURRENT_LIST_DIR}/relay.cc ${CMAKE_CURRENT_LIST_DIR}/metrics_server.cc
  DEPS cloister::common yaml-cpp PkgConfig::HTTPLIB Threads::Threads ${CLOISTER_RESOLV_LIB})
cloister_executable(NAME cloister-proxy
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/main.cc
  DEPS cloister::proxy CLI11::CLI11)
install(TARGETS cloister-proxy RUNTIME DESTINATION bin)
