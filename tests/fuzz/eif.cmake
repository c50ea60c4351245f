# The EIF reader (header, section table, CRC, signature section) and the ramdisk archive reader.
cloister_fuzz(NAME eif SOURCE ${CMAKE_CURRENT_LIST_DIR}/eif_fuzz.cc DEPS cloister::eif)
