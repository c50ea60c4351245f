# The dependency rule of DESIGN.md "Components", checked on the sources:
#   common <- attestation <- formats <- {enclave, parent, kms, cli}; proxy uses common only;
#   nothing on the host (cli/, parent/, kms/, proxy/) includes enclave/; the enclave reaches KMS
#   only through the client library (kms/client.h, kms/esdk_keyring.h), never the server.
# Usage: cmake -DROOT=<source tree> -P check_includes.cmake. Fails (exit 1), naming every
# offending file and line, if a component includes a header it may not.
cmake_minimum_required(VERSION 3.25)
if(NOT ROOT)
  message(FATAL_ERROR "usage: cmake -DROOT=<source tree> -P check_includes.cmake")
endif()

# component -> the top-level folders its quoted includes may name (besides its own).
set(allowed_common "")
set(allowed_attestation "common")
set(allowed_formats "common;attestation")
set(allowed_kms "common;attestation;formats")
set(allowed_proxy "common")
set(allowed_enclave "common;attestation;formats;kms")
set(allowed_parent "common;attestation;formats")
set(allowed_cli "common;attestation;formats;kms;parent")
# The enclave may include only these kms/ headers (the client library).
set(enclave_kms_headers "kms/client.h;kms/esdk_keyring.h")

# Known breaks being removed: file:header (none left).
set(pending "")

set(violations "")
foreach(component common attestation formats kms proxy enclave parent cli)
  file(GLOB_RECURSE sources "${ROOT}/${component}/*.h" "${ROOT}/${component}/*.cc")
  foreach(source ${sources})
    file(STRINGS "${source}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"[^\"]+\"")
    foreach(line ${lines})
      string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]+)\".*" "\\1" header "${line}")
      string(REGEX MATCH "^[^/]+" top "${header}")
      if(top STREQUAL component OR NOT header MATCHES "/")
        continue()
      endif()
      file(RELATIVE_PATH rel "${ROOT}" "${source}")
      if("${rel}:${header}" IN_LIST pending)
        continue()
      endif()
      if(NOT top IN_LIST allowed_${component})
        string(REPLACE ";" ", " may "${allowed_${component}}")
        list(APPEND violations "${rel} includes ${header} (${component}/ may use: ${may})")
      elseif(component STREQUAL "enclave" AND top STREQUAL "kms" AND NOT header IN_LIST enclave_kms_headers)
        string(REPLACE ";" ", " may "${enclave_kms_headers}")
        list(APPEND violations "${rel} includes ${header} (the enclave uses only the KMS client: ${may})")
      endif()
    endforeach()
  endforeach()
endforeach()

if(violations)
  list(LENGTH violations n)
  string(REPLACE ";" "\n  " text "${violations}")
  message(FATAL_ERROR "dependency rule broken (${n}):\n  ${text}")
endif()
message("dependency rule holds")
