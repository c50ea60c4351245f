// Unit tests of proxy/metrics_server.h: the loopback-only address rule, the exposition text and
// the server on port 0.
#include "proxy/metrics_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <string>

namespace cloister::proxy {
namespace {

TEST(MetricsServerTest, AcceptsOnlyLoopbackAddressesAndPorts) {
  for (const char* ok : {"127.0.0.1:0", "127.1.2.3:9100", "[::1]:65535"}) {
    EXPECT_TRUE(ParseLoopbackAddress(ok)) << ok;
  }
  for (const char* bad : {"0.0.0.0:9100", "10.0.0.1:80", "[::]:1", "localhost:9100",
                          "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:x", "127.0.0.1:"}) {
    auto r = ParseLoopbackAddress(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(MetricsServer::Start("0.0.0.0:0", [] { return std::string(); }).error().code(),
            ErrorCode::kInvalidArgument);
}

TEST(MetricsServerTest, RendersEveryCounter) {
  RelayMetrics m;
  m.accepted = 7;
  m.closed[static_cast<size_t>(CloseReason::kIdleTimeout)] = 2;
  m.bytes_to_remote = 100;
  const std::string text = RenderMetrics(m, 64, "kms.example", "10.0.0.1", 443);
  EXPECT_NE(text.find("cloister_proxy_connections_accepted_total 7\n"), std::string::npos);
  EXPECT_NE(text.find("cloister_proxy_connections_max 64\n"), std::string::npos);
  EXPECT_NE(text.find("cloister_proxy_connections_closed_total{reason=\"idle_timeout\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("cloister_proxy_bytes_total{direction=\"to_remote\"} 100\n"),
            std::string::npos);
  EXPECT_NE(text.find("cloister_proxy_remote_info{host=\"kms.example\",address=\"10.0.0.1\","
                      "port=\"443\"} 1\n"),
            std::string::npos);
  for (const char* name : kReasonNames) {
    EXPECT_NE(text.find(std::string("reason=\"") + name + "\""), std::string::npos) << name;
  }
}

TEST(MetricsServerTest, ServesWhatRenderReturnsUntilStopped) {
  std::atomic<int> calls{0};
  auto server = MetricsServer::Start("127.0.0.1:0", [&calls] {
    return "scrape " + std::to_string(++calls) + "\n";
  });
  ASSERT_TRUE(server) << server.error().ToString();
  ASSERT_NE((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  client.set_connection_timeout(5);
  auto res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "scrape 1\n");
  EXPECT_EQ(client.Get("/other")->status, 404);
  (*server)->Stop();
  (*server)->Stop();  // idempotent
  httplib::Client after("127.0.0.1", (*server)->port());
  after.set_connection_timeout(1);
  EXPECT_FALSE(after.Get("/metrics"));
  EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace cloister::proxy
