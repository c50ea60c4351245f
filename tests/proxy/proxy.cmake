# cloister-proxy tests: allowlist/resolver unit tests and integration tests of the real binary.
cloister_test(NAME proxy_allowlist_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/allowlist_test.cc
  DEPS cloister::proxy
  LABELS unit)
cloister_test(NAME proxy_metrics_server_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/metrics_server_test.cc
  DEPS cloister::proxy PkgConfig::HTTPLIB
  LABELS unit)
cloister_test(NAME proxy_relay_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/relay_test.cc
  DEPS cloister::common PkgConfig::HTTPLIB nlohmann_json::nlohmann_json
  LABELS integration)
add_dependencies(proxy_relay_test cloister-proxy)
