// Driver for fuzz targets when libFuzzer is not available (clang 14 on Debian 12 cannot compile
// libstdc++ 12's std::expected, which every Cloister library uses). It runs
// LLVMFuzzerTestOneInput over every file of a corpus directory, then over a bounded number of
// deterministic mutations of them (bit flips, byte overwrites, truncations, insertions,
// duplications, splices), under ASan/UBSan. A crash or sanitizer report fails the test.
//
//   fuzz_<name> --corpus DIR [--mutations N] [--max-seconds S] [--seed X] [FILE...]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> Load(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void Run(const std::vector<uint8_t>& input) {
  // Copy into an exactly-sized heap buffer so ASan catches reads past the end.
  std::unique_ptr<uint8_t[]> buf(new uint8_t[input.size() + 1]);
  if (!input.empty()) std::memcpy(buf.get(), input.data(), input.size());
  LLVMFuzzerTestOneInput(input.empty() ? nullptr : buf.get(), input.size());
}

std::vector<uint8_t> Mutate(const std::vector<std::vector<uint8_t>>& corpus, std::mt19937_64& rng) {
  std::vector<uint8_t> m = corpus[rng() % corpus.size()];
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    size_t n = m.size();
    switch (rng() % 7) {
      case 0:
        if (n) m[rng() % n] ^= static_cast<uint8_t>(1u << (rng() % 8));
        break;
      case 1:
        if (n) m[rng() % n] = static_cast<uint8_t>(rng());
        break;
      case 2:
        if (n) m.resize(rng() % n);
        break;
      case 3: {
        size_t pos = n ? rng() % (n + 1) : 0;
        size_t len = 1 + rng() % 16;
        std::vector<uint8_t> ins(len);
        for (auto& b : ins) b = static_cast<uint8_t>(rng());
        m.insert(m.begin() + static_cast<long>(pos), ins.begin(), ins.end());
        break;
      }
      case 4:
        if (n) {
          size_t pos = rng() % n, len = 1 + rng() % std::min<size_t>(n - pos, 64);
          std::vector<uint8_t> chunk(m.begin() + static_cast<long>(pos),
                                     m.begin() + static_cast<long>(pos + len));
          m.insert(m.begin() + static_cast<long>(pos), chunk.begin(), chunk.end());
        }
        break;
      case 5: {
        const auto& other = corpus[rng() % corpus.size()];
        if (!other.empty() && n) {
          size_t cut = rng() % n, from = rng() % other.size();
          m.resize(cut);
          m.insert(m.end(), other.begin() + static_cast<long>(from), other.end());
        }
        break;
      }
      case 6: {  // interesting values at a random position
        static const uint8_t kVals[] = {0x00, 0xff, 0x7f, 0x80, 0x1f, 0x3f, 0x5f, 0x9f, 0xbf, 0xf6};
        if (n) m[rng() % n] = kVals[rng() % sizeof(kVals)];
        break;
      }
    }
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string corpus_dir;
  long mutations = 0;
  double max_seconds = 60;
  uint64_t seed = 0xC101573Bu;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--corpus" && i + 1 < argc) {
      corpus_dir = argv[++i];
    } else if (a == "--mutations" && i + 1 < argc) {
      mutations = std::atol(argv[++i]);
    } else if (a == "--max-seconds" && i + 1 < argc) {
      max_seconds = std::atof(argv[++i]);
    } else if (a == "--seed" && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 0);
    } else {
      files.push_back(a);
    }
  }
  std::vector<std::vector<uint8_t>> corpus;
  if (!corpus_dir.empty()) {
    if (!std::filesystem::is_directory(corpus_dir)) {
      std::fprintf(stderr, "corpus directory missing: %s\n", corpus_dir.c_str());
      return 1;
    }
    for (const auto& e : std::filesystem::recursive_directory_iterator(corpus_dir)) {
      if (e.is_regular_file()) files.push_back(e.path().string());
    }
  }
  for (const auto& f : files) corpus.push_back(Load(f));
  if (corpus.empty()) {
    std::fprintf(stderr, "no inputs\n");
    return 1;
  }
  for (const auto& c : corpus) Run(c);
  auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(seed);
  long done = 0;
  for (; done < mutations; ++done) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
        max_seconds) {
      break;
    }
    Run(Mutate(corpus, rng));
  }
  std::printf("replayed %zu corpus inputs and %ld mutations\n", corpus.size(), done);
  return 0;
}
