// TLS through the real binary with real clients and servers: curl (HTTP/1.1 and h2 by ALPN),
// h2load and openssl s_client against a TLS listener; mutual TLS between two bulwarks; TLS
// origination to openssl s_server; handshake failures refused and counted by reason. Certificates
// come from a throwaway PKI made at test time (test_pki.h).

#include <csignal>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/test_pki.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/process.h"
#include "tests/support/socket_util.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct ToolRun {
  int code = -1;
  std::string output;
};

/** Runs a command line tool to its exit. */
ToolRun runTool(const std::string& path, const std::vector<std::string>& args,
                Deadline deadline = deadlineIn(30s)) {
  ProcessOptions options;
  options.path = path;
  options.args = args;
  ToolRun run;
  auto child = ChildProcess::spawn(options, &run.output);
  if (!child) {
    return run;
  }
  auto status = child->waitForExit(deadline);
  // The reader thread may still be collecting the last lines: wait until the output closes (a
  // pattern that never matches returns then).
  child->waitForLine("(?!x)x", deadlineIn(2s));
  run.output = child->output();
  run.code = status && status->exited ? status->code : -1;
  return run;
}

/** curl to https://NAME:PORT/PATH resolved to loopback; extra args before the URL. */
ToolRun curlHttps(const std::string& name, uint16_t port, const std::string& path,
                  std::vector<std::string> extra) {
  std::vector<std::string> args = {"-sS", "-o", "/dev/null", "-w",
                                   "status=%{http_code} version=%{http_version}\\n", "--resolve",
                                   name + ":" + std::to_string(port) + ":127.0.0.1"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back("https://" + name + ":" + std::to_string(port) + path);
  return runTool("/usr/bin/curl", args);
}

std::string certificatesBlock(const std::vector<TestCertificate>& certs) {
  std::string out = "    certificates:\n";
  for (const auto& c : certs) {
    out += "    - {certificateChain: " + c.certificate + ", privateKey: " + c.key + "}\n";
  }
  return out;
}

double handshakes(uint16_t admin, const std::string& side, const std::string& name,
                  const std::string& result) {
  return metricValue(admin, "bulwark_tls_handshakes_total", {{side, name}, {"result", result}})
      .value_or(0);
}

class TlsTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string error;
    auto pki = TestPki::create("bulwark-test-ca", &error);
    ASSERT_TRUE(pki) << error;
    pki_.emplace(std::move(*pki));
    auto api = pki_->issue("api.test", "DNS:api.test,IP:127.0.0.1", &error);
    ASSERT_TRUE(api) << error;
    api_ = *api;
    auto admin = pki_->issue("admin.test", "DNS:admin.test,DNS:*.admin.test", &error);
    ASSERT_TRUE(admin) << error;
    admin_ = *admin;
  }

  std::optional<TestPki> pki_;
  TestCertificate api_;
  TestCertificate admin_;
};

TEST_F(TlsTest, HttpsTerminationSpeaksHttp1AndH2ByAlpnToAPlaintextUpstream) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("auto", "  tls:\n" + certificatesBlock({api_, admin_}))
                                .upstream("http1", {up.address()})
                                .route()
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  auto h1 = curlHttps("api.test", port, "/one", {"--http1.1", "--cacert", pki_->caCertificate()});
  EXPECT_EQ(0, h1.code) << h1.output;
  EXPECT_THAT(h1.output, HasSubstr("status=200 version=1.1"));
  auto h2 = curlHttps("api.test", port, "/two", {"--http2", "--cacert", pki_->caCertificate()});
  EXPECT_EQ(0, h2.code) << h2.output;
  EXPECT_THAT(h2.output, HasSubstr("status=200 version=2"));
  ASSERT_TRUE(up.waitForRequests(2));
  EXPECT_EQ("https", up.request(0)->header("x-forwarded-proto").value_or(""));

  auto load = runTool("/usr/bin/h2load", {"-n", "400", "-c", "4", "-m", "10",
                                          "https://127.0.0.1:" + std::to_string(port) + "/load"});
  EXPECT_EQ(0, load.code) << load.output;
  EXPECT_THAT(load.output, HasSubstr("Application protocol: h2"));
  EXPECT_THAT(load.output, HasSubstr("400 succeeded, 0 failed, 0 errored"));
  EXPECT_GE(handshakes(proxy->adminPort(), "listener", "public", "ok"), 6);
}

TEST_F(TlsTest, SniPicksTheCertificateAndAnUnknownNameGetsTheDefault) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("auto", "  tls:\n" + certificatesBlock({api_, admin_}))
                                .upstream("http1", {up.address()})
                                .route()
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  auto admin = curlHttps("www.admin.test", port, "/", {"-v", "--cacert", pki_->caCertificate()});
  EXPECT_EQ(0, admin.code) << admin.output;
  EXPECT_THAT(admin.output, HasSubstr("subject: CN=admin.test"));
  auto unknown = curlHttps("unknown.test", port, "/", {"-v", "-k"});
  EXPECT_EQ(0, unknown.code) << unknown.output;
  EXPECT_THAT(unknown.output, HasSubstr("subject: CN=api.test"));
}

TEST_F(TlsTest, OldProtocolsPlaintextAndGarbageAreRefusedAndCounted) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("auto", "  tls:\n" + certificatesBlock({api_}) +
                                                      "    handshakeTimeout: 300ms\n")
                                .upstream("http1", {up.address()})
                                .route()
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  const uint16_t admin = proxy->adminPort();
  auto old = runTool("/usr/bin/openssl", {"s_client", "-connect",
                                          "127.0.0.1:" + std::to_string(port), "-tls1_1"});
  EXPECT_NE(0, old.code);
  EXPECT_TRUE(waitFor([&] { return handshakes(admin, "listener", "public", "protocol_version") == 1; },
                      deadlineIn(5s)));

  auto plaintext = runTool("/usr/bin/curl", {"-sS", "-m", "5", "http://127.0.0.1:" +
                                                                   std::to_string(port) + "/"});
  EXPECT_NE(0, plaintext.code);
  EXPECT_TRUE(waitFor([&] { return handshakes(admin, "listener", "public", "http_request") == 1; },
                      deadlineIn(5s)));

  // A client that connects and stalls is closed at handshakeTimeout.
  std::string error;
  int stalled = connectTcp("127.0.0.1", port, deadlineIn(2s), &error);
  ASSERT_GE(stalled, 0) << error;
  ASSERT_TRUE(sendAll(stalled, std::string("\x16\x03\x01\x00\x80", 5), deadlineIn(2s), &error));
  char buf[64];
  auto closed = recvSome(stalled, buf, sizeof(buf), deadlineIn(5s));
  EXPECT_TRUE(closed.n == 0 || closed.n == -1) << "still open after the handshake timeout";
  closeAbortive(stalled);
  EXPECT_TRUE(waitFor([&] { return handshakes(admin, "listener", "public", "timeout") == 1; },
                      deadlineIn(5s)));
  EXPECT_TRUE(up.requestCount() == 0);

  // And the listener still serves.
  auto ok = curlHttps("api.test", port, "/", {"--cacert", pki_->caCertificate()});
  EXPECT_THAT(ok.output, HasSubstr("status=200"));
}

// A "server sidecar" terminates MUTUAL TLS with a SAN allow-list; a "client sidecar" originates
// to it with several identities. Only the allowed one passes; the others fail at the handshake.
TEST_F(TlsTest, MutualTlsBetweenTwoBulwarksAdmitsOnlyTheAllowedIdentity) {
  std::string error;
  auto frontend = pki_->issue("frontend", "URI:spiffe://cluster.local/ns/shop/sa/frontend", &error);
  ASSERT_TRUE(frontend) << error;
  auto intruder = pki_->issue("intruder", "URI:spiffe://cluster.local/ns/shop/sa/intruder", &error);
  ASSERT_TRUE(intruder) << error;
  auto other_ca = TestPki::create("other-ca", &error);
  ASSERT_TRUE(other_ca) << error;
  auto stranger = other_ca->issue("stranger", "URI:spiffe://cluster.local/ns/shop/sa/frontend",
                                  &error);
  ASSERT_TRUE(stranger) << error;

  FakeUpstream app(Protocol::Http1);
  auto server = startBulwark(
      ConfigBuilder()
          .listener("auto", "  tls:\n    mode: MUTUAL\n" + certificatesBlock({api_}) +
                                "    caCertificates: " + pki_->caCertificate() +
                                "\n    subjectAltNames: [\"spiffe://cluster.local/ns/shop/sa/frontend\"]\n")
          .upstream("http1", {app.address()})
          .route()
          .yaml());
  ASSERT_TRUE(server);
  const std::string inbound = "127.0.0.1:" + std::to_string(server->port("public"));

  auto upstreamTls = [&](const std::string& mode, const TestCertificate* client) {
    std::string tls = "  tls:\n    mode: " + mode + "\n    sni: api.test\n    caCertificates: " +
                      pki_->caCertificate() + "\n";
    if (client != nullptr) {
      tls += "    clientCertificate: " + client->certificate + "\n    privateKey: " + client->key +
             "\n";
    }
    return tls;
  };
  auto client = startBulwark(ConfigBuilder()
                                 .listener("http1")
                                 .upstream("http2", {inbound}, upstreamTls("MUTUAL", &*frontend),
                                           "allowed")
                                 .upstream("http1", {inbound}, upstreamTls("MUTUAL", &*intruder),
                                           "wrong-san")
                                 .upstream("http1", {inbound}, upstreamTls("MUTUAL", &*stranger),
                                           "other-ca")
                                 .upstream("http1", {inbound}, upstreamTls("SIMPLE", nullptr),
                                           "no-cert")
                                 .route("", "/allowed", "allowed", "allowed")
                                 .route("", "/wrong-san", "wrong-san", "wrong-san")
                                 .route("", "/other-ca", "other-ca", "other-ca")
                                 .route("", "/no-cert", "no-cert", "no-cert")
                                 .yaml());
  ASSERT_TRUE(client);
  const uint16_t out = client->port("public");
  auto get = [&](const std::string& path) {
    return runTool("/usr/bin/curl", {"-sS", "-o", "/dev/null", "-w",
                                     "status=%{http_code}\\n", "-D", "-", "-m", "10",
                                     "http://127.0.0.1:" + std::to_string(out) + path});
  };
  auto allowed = get("/allowed");
  EXPECT_THAT(allowed.output, HasSubstr("status=200")) << allowed.output;
  ASSERT_TRUE(app.waitForRequests(1));
  for (const char* path : {"/wrong-san", "/other-ca", "/no-cert"}) {
    auto refused = get(path);
    EXPECT_THAT(refused.output, HasSubstr("status=503")) << path << ": " << refused.output;
    EXPECT_THAT(refused.output, HasSubstr("upstream_tls_error")) << path;
  }
  EXPECT_EQ(1u, app.requestCount());
  const uint16_t server_admin = server->adminPort();
  EXPECT_TRUE(waitFor(
      [&] {
        return handshakes(server_admin, "listener", "public", "san_mismatch") >= 1 &&
               handshakes(server_admin, "listener", "public", "unknown_ca") >= 1 &&
               handshakes(server_admin, "listener", "public", "no_client_cert") >= 1;
      },
      deadlineIn(5s)))
      << adminGet(server_admin, "/metrics").body;
  EXPECT_GE(handshakes(client->adminPort(), "upstream", "allowed", "ok"), 1);
}

// Origination to a real TLS server (openssl s_server): verified by default, refused with
// upstream_tls_error on a wrong CA or SAN, and the second connection resumes the session.
TEST_F(TlsTest, OriginationVerifiesTheServerAndResumesSessions) {
  ProcessOptions options;
  options.path = "/usr/bin/openssl";
  options.args = {"s_server", "-accept", "127.0.0.1:0", "-www", "-cert", api_.certificate,
                  "-key", api_.key};
  std::string error;
  auto s_server = ChildProcess::spawn(options, &error);
  ASSERT_TRUE(s_server) << error;
  auto port = s_server->waitForListeningPort(deadlineIn(10s), R"(ACCEPT 127\.0\.0\.1:(\d+))");
  ASSERT_TRUE(port) << s_server->output();
  const std::string address = "127.0.0.1:" + std::to_string(*port);

  auto other_ca = TestPki::create("other-ca", &error);
  ASSERT_TRUE(other_ca) << error;
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("http1")
          .upstream("http1", {address},
                    "  tls: {sni: api.test, caCertificates: " + pki_->caCertificate() + "}\n",
                    "good")
          .upstream("http1", {address},
                    "  tls: {sni: api.test, caCertificates: " + other_ca->caCertificate() + "}\n",
                    "wrong-ca")
          .upstream("http1", {address},
                    "  tls: {caCertificates: " + pki_->caCertificate() +
                        ", subjectAltNames: [payments.test]}\n",
                    "wrong-san")
          .route("", "/good", "good", "good")
          .route("", "/wrong-ca", "wrong-ca", "wrong-ca")
          .route("", "/wrong-san", "wrong-san", "wrong-san")
          .yaml());
  ASSERT_TRUE(proxy);
  auto get = [&](const std::string& path) {
    return runTool("/usr/bin/curl",
                   {"-sS", "-o", "/dev/null", "-w", "status=%{http_code}\\n", "-D", "-", "-m",
                    "10", "http://127.0.0.1:" + std::to_string(proxy->port("public")) + path});
  };
  EXPECT_THAT(get("/good").output, HasSubstr("status=200"));
  EXPECT_THAT(get("/good").output, HasSubstr("status=200"));
  for (const char* path : {"/wrong-ca", "/wrong-san"}) {
    auto refused = get(path);
    EXPECT_THAT(refused.output, HasSubstr("status=503")) << refused.output;
    EXPECT_THAT(refused.output, HasSubstr("x-bulwark-reason: upstream_tls_error"));
  }
  const uint16_t admin = proxy->adminPort();
  EXPECT_GE(handshakes(admin, "upstream", "good", "ok"), 2);
  EXPECT_GE(handshakes(admin, "upstream", "wrong-ca", "unknown_ca"), 1);
  EXPECT_GE(handshakes(admin, "upstream", "wrong-san", "san_mismatch"), 1);
  // s_server -www answers HTTP/1.0 and closes: the second request needed a new connection, which
  // resumed the first one's session.
  EXPECT_GE(metricValue(admin, "bulwark_tls_sessions_resumed_total", {{"upstream", "good"}})
                .value_or(0),
            1);
}

}  // namespace
}  // namespace bulwark::testing
