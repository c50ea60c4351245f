# Measurements files (nitro-cli / build-enclave JSON) as parties and auditors read them.
cloister_fuzz(NAME measurements SOURCE measurements_fuzz.cc DEPS cloister::measurements)
