# cloister-kms: key store, service and the HTTP server.
cloister_library(NAME kms_server
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/key_store.cc ${CMAKE_CURRENT_LIST_DIR}/config.cc
          ${CMAKE_CURRENT_LIST_DIR}/service.cc ${CMAKE_CURRENT_LIST_DIR}/http_server.cc
          ${CMAKE_CURRENT_LIST_DIR}/tls.cc ${CMAKE_CURRENT_LIST_DIR}/http_handler.cc
          ${CMAKE_CURRENT_LIST_DIR}/data_dir.cc
  DEPS cloister::kms_protocol cloister::kms_audit cloister::kms_policy SQLite::SQLite3 yaml-cpp
  Boost::headers)
cloister_executable(NAME cloister-kms SOURCES ${CMAKE_CURRENT_LIST_DIR}/main.cc DEPS cloister::kms_server)
target_compile_definitions(cloister-kms PRIVATE CLOISTER_VERSION="${PROJECT_VERSION}")
install(TARGETS cloister-kms RUNTIME DESTINATION bin)
