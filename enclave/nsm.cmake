# The NSM API codec and its clients (emulated channel, real /dev/nsm); see docs/nsm.md. The
# launcher's monitor uses the same codec to serve the emulated device.
cloister_library(NAME nsm SOURCES ${CMAKE_CURRENT_LIST_DIR}/nsm.cc DEPS cloister::common)
