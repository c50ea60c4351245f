# Every third-party dependency is found here, once. The Debian packages that provide them are
# listed in scripts/packages.txt.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenSSL 3.0 REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 QUIET)
find_package(yaml-cpp REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(Boost 1.74 REQUIRED)  # header-only: Beast and Asio (the KMS server)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
pkg_check_modules(CBOR REQUIRED IMPORTED_TARGET libcbor)
pkg_check_modules(SECCOMP REQUIRED IMPORTED_TARGET libseccomp)
pkg_check_modules(HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)

if(NOT TARGET CLI11::CLI11)
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
endif()

# examples/object-detection: libjpeg-turbo and libpng (decoding and encoding images) and four
# OpenCV 4.6 modules (core, imgproc, dnn, objdetect; scripts/packages.txt). Debian's -dev
# packages of the single modules ship no OpenCVConfig.cmake (only the libopencv-dev meta package
# does, with every module), so the modules are found one by one. Without them the example's
# targets are not defined.
find_package(JPEG)
find_package(PNG)
find_path(CLOISTER_OPENCV_INCLUDE_DIR opencv2/dnn.hpp PATH_SUFFIXES opencv4)
set(CLOISTER_OPENCV_FOUND FALSE)
if(CLOISTER_OPENCV_INCLUDE_DIR AND JPEG_FOUND AND PNG_FOUND)
  set(CLOISTER_OPENCV_FOUND TRUE)
  set(opencv_libs "")
  foreach(m dnn objdetect imgproc core)
    find_library(CLOISTER_OPENCV_${m}_LIBRARY opencv_${m})
    if(NOT CLOISTER_OPENCV_${m}_LIBRARY)
      set(CLOISTER_OPENCV_FOUND FALSE)
    endif()
    list(APPEND opencv_libs ${CLOISTER_OPENCV_${m}_LIBRARY})
  endforeach()
  if(CLOISTER_OPENCV_FOUND)
    add_library(cloister_opencv INTERFACE IMPORTED)
    target_include_directories(cloister_opencv SYSTEM INTERFACE ${CLOISTER_OPENCV_INCLUDE_DIR})
    target_link_libraries(cloister_opencv INTERFACE ${opencv_libs})
  endif()
endif()
if(NOT CLOISTER_OPENCV_FOUND)
  message(STATUS "OpenCV (dnn, objdetect), libjpeg or libpng not found: "
                 "examples/object-detection is not built (scripts/setup installs them)")
endif()
