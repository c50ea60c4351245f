# Configure-time checks of the dependency rule in DESIGN.md ("Components": the enclave reaches
# KMS through the KMS client library, never the server; a client library whose types do not
# pull in the server).
#
#   cloister_link_closure(<target> <out-var>)
#     Sets <out-var> to every target <target> links, directly or transitively: its
#     LINK_LIBRARIES and INTERFACE_LINK_LIBRARIES, then theirs, with ALIAS names resolved to the
#     real target and $<LINK_ONLY:x> read as x. Names that are not targets (system libraries,
#     flags) are left out.
#   cloister_forbid_links(TARGET <target> FORBIDDEN <regex>... REASON <text>)
#     Stops configuration with FATAL_ERROR when a target in <target>'s closure has a name that
#     matches one of the regexes, naming the offender and <reason>.
#
# Every target the closure names must exist when these run: call them after the targets are
# defined (cmake_language(DEFER ...) at the end of a directory, or in the top CMakeLists.txt).

function(cloister_link_closure target out)
  set(seen "")
  set(queue "${target}")
  while(queue)
    list(POP_FRONT queue item)
    # $<LINK_ONLY:x> is how CMake records a static library's PRIVATE dependency; x still links.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(NOT TARGET "${item}")
      continue()
    endif()
    get_target_property(aliased "${item}" ALIASED_TARGET)
    if(aliased)
      set(item "${aliased}")
    endif()
    if("${item}" IN_LIST seen)
      continue()
    endif()
    list(APPEND seen "${item}")
    foreach(prop LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(libs "${item}" ${prop})
      if(libs)
        list(APPEND queue ${libs})
      endif()
    endforeach()
  endwhile()
  list(REMOVE_ITEM seen "${target}")
  set(${out} "${seen}" PARENT_SCOPE)
endfunction()

function(cloister_forbid_links)
  cmake_parse_arguments(A "" "TARGET;REASON" "FORBIDDEN" ${ARGN})
  if(NOT TARGET "${A_TARGET}")
    message(FATAL_ERROR "cloister_forbid_links: no target ${A_TARGET} to check")
  endif()
  cloister_link_closure("${A_TARGET}" closure)
  foreach(dep ${closure})
    foreach(pattern ${A_FORBIDDEN})
      if(dep MATCHES "${pattern}")
        message(FATAL_ERROR "dependency rule broken: ${A_TARGET} links ${dep} (directly or "
                            "through another library); ${A_REASON}")
      endif()
    endforeach()
  endforeach()
endfunction()

# The KMS server's libraries: the request decoder and blob format (kms_protocol), the server
# (kms_server), its policy engine (kms_policy) and audit log (kms_audit); the _san suffix is
# each one's sanitized copy for fuzz targets.
set(CLOISTER_KMS_SERVER_LIBS
    "^cloister_kms_(protocol|server|policy|audit)(_san)?$")

function(cloister_check_kms_client_apart)
  foreach(t cloister_kms_client cloister_kms_client_san)
    if(TARGET ${t})
      cloister_forbid_links(TARGET ${t} FORBIDDEN ${CLOISTER_KMS_SERVER_LIBS}
        REASON "the KMS client library must not pull in the server (DESIGN.md \"Components\"); "
               "put what both sides need in kms/api_types.h (cloister::kms_api)")
    endif()
  endforeach()
endfunction()
