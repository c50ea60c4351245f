# cloister-kms: key store, service and the HTTP server.
cloister_library(NAME kms_server SOURCES key_store.cc config.cc service.cc http_server.cc tls.cc
  http_handler.cc data_dir.cc
  DEPS cloister::kms_protocol cloister::kms_audit cloister::kms_policy SQLite::SQLite3 yaml-cpp
  Boost::headers)
cloister_executable(NAME cloister-kms SOURCES main.cc DEPS cloister::kms_server)
target_compile_definitions(cloister-kms PRIVATE CLOISTER_VERSION="${PROJECT_VERSION}")
install(TARGETS cloister-kms RUNTIME DESTINATION bin)
