// Fuzz target: every input is parsed as an enclave image and, whatever parses, measured, its
// signature section checked and its ramdisks read as archives. Also reads the input itself as a
// ramdisk archive. Nothing may crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "attestation/eif.h"
#include "attestation/eif_archive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cloister::ByteSpan input(data, size);
  (void)cloister::eif::ReadArchive(input);
  (void)cloister::eif::DecodeSignatureSection(input);
  auto image = cloister::eif::ParseImage(input);
  if (!image) return 0;
  auto m = cloister::eif::Measure(*image);
  if (m) (void)cloister::eif::CheckSignature(*image, *m);
  for (const auto* ramdisk : image->Ramdisks()) (void)cloister::eif::ReadArchive(ramdisk->data);
  return 0;
}
