// Crash test: several client threads create keys and encrypt under them while cloister-kms is
// killed with SIGKILL at random moments and restarted over the same data dir. After every
// restart, every key whose CreateKey was acknowledged still exists and every acknowledged
// ciphertext still decrypts to its plaintext. Bounded: kCycles cycles, well under a minute.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include "kms/client.h"
#include "tests/support/process.h"

namespace cloister::kms {
namespace {

namespace fs = std::filesystem;

constexpr int kCycles = 4;
constexpr int kThreads = 4;
constexpr char kKeyId[] = "AKIACRASHTEST0000001";
constexpr char kSecret[] = "crash/test+secret0000000000000000000001";

struct Acked {
  std::string key_arn;
  Bytes blob;
  Bytes plaintext;
  EncryptionContext context;
};

class CrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kms-crash-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_ = testing::KmsConfig({{"arn:aws:iam::111122223333:user/load", kKeyId, kSecret}});
  }
  void TearDown() override {
    Kill();
    fs::remove_all(dir_);
  }

  // Starts cloister-kms on port 0 over the same data dir and returns its endpoint.
  std::string Start() {
    auto kms = testing::KmsProcess::Start(dir_, config_);
    EXPECT_TRUE(kms) << kms.error().ToString();
    if (!kms) return "";
    kms_.emplace(std::move(*kms));
    return kms_->endpoint();
  }
  void Kill() {
    if (kms_) kms_->process().Stop(SIGKILL);
    kms_.reset();
  }
  std::unique_ptr<KmsClient> Client(const std::string& endpoint) {
    auto c = testing::NewKmsClient(endpoint, kKeyId, kSecret);
    EXPECT_TRUE(c);
    return std::move(*c);
  }
  void CheckAll(const std::string& endpoint) {
    auto c = Client(endpoint);
    for (const std::string& arn : keys_) {
      auto md = c->DescribeKey(arn);
      ASSERT_TRUE(md) << "acknowledged key lost: " << arn << ": " << md.error().ToString();
    }
    for (const Acked& a : acked_) {
      auto r = c->Decrypt(a.blob, a.context);
      ASSERT_TRUE(r) << "acknowledged ciphertext under " << a.key_arn
                     << " no longer decrypts: " << r.error().ToString();
      EXPECT_EQ(Bytes(r->plaintext.begin(), r->plaintext.end()), a.plaintext);
      EXPECT_EQ(r->key_id, a.key_arn);
    }
  }

  fs::path dir_;
  std::string config_;
  std::optional<testing::KmsProcess> kms_;
  std::mutex mu_;
  std::vector<std::string> keys_;
  std::vector<Acked> acked_;
};

TEST_F(CrashTest, AcknowledgedKeysAndCiphertextsSurviveKill9) {
  std::mt19937 rng(std::random_device{}());
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::string endpoint = Start();
    ASSERT_FALSE(endpoint.empty());
    CheckAll(endpoint);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto c = Client(endpoint);
        std::mt19937 r(static_cast<unsigned>(t * 7919 + cycle));
        std::vector<std::string> mine;
        while (!stop.load()) {
          if (mine.empty() || r() % 3 == 0) {
            auto md = c->CreateKey("", "crash");
            if (!md) continue;
            std::string arn = (*md)["Arn"];
            mine.push_back(arn);
            std::lock_guard<std::mutex> lock(mu_);
            keys_.push_back(arn);
            continue;
          }
          Acked a;
          a.key_arn = mine[r() % mine.size()];
          a.plaintext.resize(1 + r() % 64);
          for (auto& b : a.plaintext) b = static_cast<uint8_t>(r());
          a.context = {{"cycle", std::to_string(cycle)}, {"thread", std::to_string(t)}};
          auto blob = c->Encrypt(a.key_arn, a.plaintext, a.context);
          if (!blob) continue;
          a.blob = std::move(*blob);
          std::lock_guard<std::mutex> lock(mu_);
          acked_.push_back(std::move(a));
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
    Kill();  // SIGKILL while requests are in flight
    stop = true;
    for (auto& th : threads) th.join();
  }
  std::string endpoint = Start();
  ASSERT_FALSE(endpoint.empty());
  CheckAll(endpoint);
  EXPECT_GT(keys_.size(), 0u);
  EXPECT_GT(acked_.size(), 0u);
  std::printf("crash test: %zu acknowledged keys, %zu acknowledged ciphertexts, %d kills\n",
              keys_.size(), acked_.size(), kCycles);
  Kill();
}

}  // namespace
}  // namespace cloister::kms
