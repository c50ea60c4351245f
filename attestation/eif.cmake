# Enclave images: the EIF v4 reader/writer, measurements, signature section and the cpio newc
# ramdisk archives (docs/eif.md). Depends on common only.
cloister_library(NAME eif
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/eif.cc ${CMAKE_CURRENT_LIST_DIR}/eif_archive.cc
  DEPS cloister::common)
find_package(ZLIB REQUIRED)
target_link_libraries(cloister_eif PRIVATE ZLIB::ZLIB)
if(CLOISTER_FUZZ_SANITIZE)  # the sanitized copy cloister_library made for fuzz targets
  target_link_libraries(cloister_eif_san PRIVATE ZLIB::ZLIB)
endif()
