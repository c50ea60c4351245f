include(GoogleTest)

# Helpers that give every Cloister target the same flags.
#
#   cloister_library(NAME <name> SOURCES ... [DEPS ...])
#     Builds cloister_<name> (alias cloister::<name>). With CLOISTER_FUZZ_SANITIZE a second,
#     sanitized copy cloister_<name>_san is defined; it is only built when a fuzz target needs it.
#   cloister_executable(NAME <name> SOURCES ... [DEPS ...])
#   cloister_test(NAME <name> SOURCES ... [DEPS ...] [LABELS ...])
#     A GoogleTest binary, discovered by ctest. It sees CLOISTER_SOURCE_DIR, CLOISTER_BINARY_DIR
#     and CLOISTER_VECTORS_DIR (tests/vectors: the real AWS vectors, inside the checkout).
#   cloister_fuzz(NAME <name> SOURCE <file> [DEPS ...])
#     A fuzz target (LLVMFuzzerTestOneInput) linked with tests/fuzz/replay_main.cc, built with
#     ASan/UBSan, replayed and mutated over tests/fuzz/corpus/<name>/ by ctest (label fuzz).

set(CLOISTER_WARNINGS -Wall -Wextra -Wpedantic -Werror)
set(CLOISTER_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer)

function(cloister_library)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(cloister_${A_NAME} STATIC ${A_SOURCES})
  add_library(cloister::${A_NAME} ALIAS cloister_${A_NAME})
  target_include_directories(cloister_${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(cloister_${A_NAME} PRIVATE ${CLOISTER_WARNINGS})
  target_link_libraries(cloister_${A_NAME} PUBLIC ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
  set_target_properties(cloister_${A_NAME} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  if(CLOISTER_FUZZ_SANITIZE)
    set(san_deps "")
    foreach(d ${A_DEPS})
      if(d MATCHES "^cloister::(.*)$")
        list(APPEND san_deps cloister_${CMAKE_MATCH_1}_san)
      else()
        list(APPEND san_deps ${d})
      endif()
    endforeach()
    add_library(cloister_${A_NAME}_san STATIC EXCLUDE_FROM_ALL ${A_SOURCES})
    target_include_directories(cloister_${A_NAME}_san PUBLIC ${PROJECT_SOURCE_DIR})
    target_compile_options(cloister_${A_NAME}_san PRIVATE ${CLOISTER_WARNINGS}
                           PUBLIC ${CLOISTER_SAN_FLAGS})
    target_link_options(cloister_${A_NAME}_san PUBLIC ${CLOISTER_SAN_FLAGS})
    target_link_libraries(cloister_${A_NAME}_san PUBLIC ${san_deps} PRIVATE ${A_PRIVATE_DEPS})
  endif()
endfunction()

function(cloister_executable)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${A_NAME} ${A_SOURCES})
  target_compile_options(${A_NAME} PRIVATE ${CLOISTER_WARNINGS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS})
endfunction()

function(cloister_test)
  cmake_parse_arguments(A "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT A_LABELS)
    set(A_LABELS unit)
  endif()
  add_executable(${A_NAME} ${A_SOURCES})
  target_compile_options(${A_NAME} PRIVATE ${CLOISTER_WARNINGS})
  target_compile_definitions(${A_NAME} PRIVATE
      CLOISTER_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
      CLOISTER_BINARY_DIR="${PROJECT_BINARY_DIR}"
      CLOISTER_VECTORS_DIR="${PROJECT_SOURCE_DIR}/tests/vectors")
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${A_NAME} PROPERTIES LABELS "${A_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()

function(cloister_fuzz)
  cmake_parse_arguments(A "" "NAME;SOURCE" "DEPS" ${ARGN})
  set(deps "")
  foreach(d ${A_DEPS})
    if(CLOISTER_FUZZ_SANITIZE AND d MATCHES "^cloister::(.*)$")
      list(APPEND deps cloister_${CMAKE_MATCH_1}_san)
    else()
      list(APPEND deps ${d})
    endif()
  endforeach()
  add_executable(fuzz_${A_NAME} ${A_SOURCE} ${PROJECT_SOURCE_DIR}/tests/fuzz/replay_main.cc)
  target_compile_options(fuzz_${A_NAME} PRIVATE ${CLOISTER_WARNINGS})
  if(CLOISTER_FUZZ_SANITIZE)
    target_compile_options(fuzz_${A_NAME} PRIVATE ${CLOISTER_SAN_FLAGS})
    target_link_options(fuzz_${A_NAME} PRIVATE ${CLOISTER_SAN_FLAGS})
  endif()
  target_link_libraries(fuzz_${A_NAME} PRIVATE ${deps})
  set(corpus ${PROJECT_SOURCE_DIR}/tests/fuzz/corpus/${A_NAME})
  # Replays every corpus file, then a bounded number of deterministic mutations of them.
  add_test(NAME fuzz.${A_NAME}
           COMMAND fuzz_${A_NAME} --corpus ${corpus} --mutations 3000 --max-seconds 60)
  set_tests_properties(fuzz.${A_NAME} PROPERTIES LABELS fuzz TIMEOUT 180
      ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endfunction()
