# deps.kms_client_apart: proves that the KMS client library stays apart from the server
# (DESIGN.md "Components"; cmake/CloisterLinkCheck.cmake).
#
#   cmake -DCLOISTER_SOURCE_DIR=<src> -DCLOISTER_BINARY_DIR=<build> -DWORK_DIR=<scratch>
#         -DGENERATOR=<generator> -DLINK_TXT=<link.txt of a client-only test> -P <this file>
#
# 1. The check can fail: a miniature of the KMS libraries (deps/fixture) is configured with the
#    clean graph, which must pass, and with each way the client could come to link the server
#    (directly, PRIVATE, through another library, through an INTERFACE library, only in the
#    sanitized copy), each of which must stop configuration with the check's message.
# 2. The real build obeys it: the link line CMake generated for kms_client_tls_test (which links
#    the client and the test support, not the server) names the client's archive and none of
#    the server's.
cmake_minimum_required(VERSION 3.25)
foreach(v CLOISTER_SOURCE_DIR WORK_DIR GENERATOR LINK_TXT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "kms_client_apart: -D${v}=... is required")
  endif()
endforeach()

set(fixture_build ${WORK_DIR}/fixture-build)
file(REMOVE_RECURSE ${fixture_build})
foreach(violation none direct private transitive interface sanitized)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -G ${GENERATOR} -S ${CLOISTER_SOURCE_DIR}/tests/kms/deps/fixture
            -B ${fixture_build} -DCLOISTER_SOURCE_DIR=${CLOISTER_SOURCE_DIR}
            -DVIOLATION=${violation}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(violation STREQUAL "none")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "kms_client apart: check passed")
      message(FATAL_ERROR "the clean graph did not configure (exit ${rc}):\n${out}\n${err}")
    endif()
  else()
    if(rc EQUAL 0)
      message(FATAL_ERROR "violation '${violation}' configured: the check did not catch it")
    endif()
    # CMake wraps the message's lines; compare it with its white space folded.
    string(REGEX REPLACE "[ \t\r\n]+" " " flat "${err}")
    if(NOT flat MATCHES "dependency rule broken: cloister_kms_client(_san)? links cloister_kms_")
      message(FATAL_ERROR "violation '${violation}' failed for another reason:\n${err}")
    endif()
  endif()
  message(STATUS "fixture ${violation}: as expected")
endforeach()

if(NOT EXISTS ${LINK_TXT})
  message(FATAL_ERROR "no ${LINK_TXT}: this test reads the link line the Unix Makefiles "
                      "generator writes; teach it the generator in use (${GENERATOR})")
endif()
file(READ ${LINK_TXT} link_line)
if(NOT link_line MATCHES "libcloister_kms_client\\.a")
  message(FATAL_ERROR "${LINK_TXT} does not link the KMS client; the test reads the wrong "
                      "target:\n${link_line}")
endif()
if(link_line MATCHES "libcloister_kms_(protocol|server|policy|audit)(_san)?\\.a")
  message(FATAL_ERROR "a client-only executable links ${CMAKE_MATCH_0}:\n${link_line}")
endif()
message(STATUS "kms_client_tls_test links the KMS client and none of the server's libraries")
