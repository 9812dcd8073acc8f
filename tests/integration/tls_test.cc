// TLS through the real binary with real clients and servers: curl (HTTP/1.1 and h2 by ALPN),
// h2load and openssl s_client against a TLS listener; mutual TLS between two bulwarks; TLS
// origination to openssl s_server; handshake failures refused and counted by reason. Certificates
// come from a throwaway PKI made at test time (test_pki.h).

#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
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
  std::vector<std::string> args = {"-sS",
                                   "-o",
                                   "/dev/null",
                                   "-w",
                                   "status=%{http_code} version=%{http_version}\\n",
                                   "--resolve",
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

TEST_F(TlsTest, RoutesMatchOnSniAndClientCertHeadersFromClientsAreDropped) {
  FakeUpstream api(Protocol::Http1);
  FakeUpstream admin(Protocol::Http1);
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("auto", "  tls:\n" + certificatesBlock({api_, admin_}))
          .upstream("http1", {api.address()}, "", "api")
          .upstream("http1", {admin.address()}, "", "admin")
          .rawRoute("- name: admin\n  match: {sni: [\"*.admin.test\"]}\n  upstream: admin\n")
          .route("", "/", "api", "api")
          .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  auto to_admin = curlHttps("www.admin.test", port, "/x",
                            {"--cacert", pki_->caCertificate(), "-H",
                             "X-Forwarded-Client-Cert: Hash=forged;URI=spiffe://evil"});
  EXPECT_THAT(to_admin.output, HasSubstr("status=200")) << to_admin.output;
  auto to_api = curlHttps("api.test", port, "/y", {"--cacert", pki_->caCertificate()});
  EXPECT_THAT(to_api.output, HasSubstr("status=200")) << to_api.output;
  ASSERT_TRUE(admin.waitForRequests(1));
  ASSERT_TRUE(api.waitForRequests(1));
  EXPECT_EQ(1u, admin.requestCount());
  EXPECT_EQ("/y", api.request(0)->path);
  EXPECT_FALSE(admin.request(0)->header("x-forwarded-client-cert").has_value());
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
  auto old = runTool("/usr/bin/openssl",
                     {"s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-tls1_1"});
  EXPECT_NE(0, old.code);
  EXPECT_TRUE(
      waitFor([&] { return handshakes(admin, "listener", "public", "protocol_version") == 1; },
              deadlineIn(5s)));

  auto plaintext = runTool("/usr/bin/curl",
                           {"-sS", "-m", "5", "http://127.0.0.1:" + std::to_string(port) + "/"});
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
  auto stranger =
      other_ca->issue("stranger", "URI:spiffe://cluster.local/ns/shop/sa/frontend", &error);
  ASSERT_TRUE(stranger) << error;

  FakeUpstream app(Protocol::Http1);
  auto server = startBulwark(
      ConfigBuilder()
          .listener("auto",
                    "  tls:\n    mode: MUTUAL\n    forwardClientCertDetails: true\n" +
                        certificatesBlock({api_}) + "    caCertificates: " + pki_->caCertificate() +
                        "\n    subjectAltNames: [\"spiffe://cluster.local/ns/shop/sa/frontend\"]\n")
          .upstream("http1", {app.address()})
          .route()
          .yaml());
  ASSERT_TRUE(server);
  const std::string inbound = "127.0.0.1:" + std::to_string(server->port("public"));

  auto upstreamTls = [&](const std::string& mode, const TestCertificate* client) {
    std::string tls = "  tls:\n    mode: " + mode +
                      "\n    sni: api.test\n    caCertificates: " + pki_->caCertificate() + "\n";
    if (client != nullptr) {
      tls += "    clientCertificate: " + client->certificate + "\n    privateKey: " + client->key +
             "\n";
    }
    return tls;
  };
  auto client =
      startBulwark(ConfigBuilder()
                       .listener("http1")
                       .upstream("http2", {inbound}, upstreamTls("MUTUAL", &*frontend), "allowed")
                       .upstream("http1", {inbound}, upstreamTls("MUTUAL", &*intruder), "wrong-san")
                       .upstream("http1", {inbound}, upstreamTls("MUTUAL", &*stranger), "other-ca")
                       .upstream("http1", {inbound}, upstreamTls("SIMPLE", nullptr), "no-cert")
                       .route("", "/allowed", "allowed", "allowed")
                       .route("", "/wrong-san", "wrong-san", "wrong-san")
                       .route("", "/other-ca", "other-ca", "other-ca")
                       .route("", "/no-cert", "no-cert", "no-cert")
                       .yaml());
  ASSERT_TRUE(client);
  const uint16_t out = client->port("public");
  auto get = [&](const std::string& path) {
    return runTool("/usr/bin/curl",
                   {"-sS", "-o", "/dev/null", "-w", "status=%{http_code}\\n", "-D", "-", "-m", "10",
                    "http://127.0.0.1:" + std::to_string(out) + path});
  };
  auto allowed = get("/allowed");
  EXPECT_THAT(allowed.output, HasSubstr("status=200")) << allowed.output;
  ASSERT_TRUE(app.waitForRequests(1));
  // The app learns who called: the verified client certificate, as Envoy's XFCC.
  const std::string xfcc = app.request(0)->header("x-forwarded-client-cert").value_or("");
  EXPECT_THAT(xfcc, ::testing::StartsWith("Hash="));
  EXPECT_THAT(xfcc, HasSubstr(";URI=spiffe://cluster.local/ns/shop/sa/frontend"));
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
  options.args = {"s_server", "-accept",        "127.0.0.1:0", "-www",
                  "-cert",    api_.certificate, "-key",        api_.key};
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
                   {"-sS", "-o", "/dev/null", "-w", "status=%{http_code}\\n", "-D", "-", "-m", "10",
                    "http://127.0.0.1:" + std::to_string(proxy->port("public")) + path});
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
  EXPECT_GE(
      metricValue(admin, "bulwark_tls_sessions_resumed_total", {{"upstream", "good"}}).value_or(0),
      1);
}

/**
 * A Kubernetes Secret volume: tls.crt and tls.key are symlinks through "..data" to a timestamped
 * directory, and an update swaps "..data" atomically (both files change at once).
 */
class SecretVolume {
public:
  explicit SecretVolume(const TestCertificate& first) {
    dir_ = std::filesystem::temp_directory_path() /
           ("bulwark-secret-" + std::to_string(::getpid()) + "-" + std::to_string(++counter_));
    std::filesystem::create_directories(dir_);
    publish(first);
    std::filesystem::create_symlink("..data/tls.crt", dir_ / "tls.crt");
    std::filesystem::create_symlink("..data/tls.key", dir_ / "tls.key");
  }
  std::string certificate() const { return (dir_ / "tls.crt").string(); }
  std::string key() const { return (dir_ / "tls.key").string(); }

  /** What the kubelet does on a Secret update. */
  void publish(const TestCertificate& cert) { publishFiles(cert.certificate, cert.key); }
  void publishFiles(const std::string& certificate, const std::string& key) {
    const std::string version = "..v" + std::to_string(++version_);
    std::filesystem::create_directories(dir_ / version);
    std::filesystem::copy_file(certificate, dir_ / version / "tls.crt");
    std::filesystem::copy_file(key, dir_ / version / "tls.key");
    std::filesystem::create_symlink(version, dir_ / "..data_tmp");
    std::filesystem::rename(dir_ / "..data_tmp", dir_ / "..data");
  }

private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  int version_ = 0;
};

/** The serial of the certificate a fresh handshake to 127.0.0.1:port gets. */
std::string servedSerial(uint16_t port) {
  auto run =
      runTool("/bin/sh", {"-c", "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                                    " -servername api.test </dev/null 2>/dev/null | openssl x509 "
                                    "-noout -serial"});
  auto eq = run.output.find("serial=");
  if (eq == std::string::npos) {
    return "";
  }
  std::string serial = run.output.substr(eq + 7);
  return serial.substr(0, serial.find_first_of("\r\n"));
}

TEST_F(TlsTest, CertificateRotationUnderLoadReachesNewHandshakesWithoutFailures) {
  std::string error;
  auto next = pki_->issue("api.test", "DNS:api.test,IP:127.0.0.1", &error);
  ASSERT_TRUE(next) << error;
  SecretVolume secret(api_);
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("auto", "  tls:\n    certificates:\n    - {certificateChain: " +
                                secret.certificate() + ", privateKey: " + secret.key() + "}\n")
          .upstream("http1", {up.address()})
          .route()
          .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  ASSERT_EQ(api_.serial, servedSerial(port));

  // Open-loop-ish load on long-lived TLS connections across the rotation.
  ProcessOptions load_options;
  load_options.path = "/usr/bin/h2load";
  load_options.args = {
      "-D", "4", "-c", "4", "-m", "4", "https://127.0.0.1:" + std::to_string(port) + "/during"};
  auto load = ChildProcess::spawn(load_options, &error);
  ASSERT_TRUE(load) << error;
  ASSERT_TRUE(up.waitForRequests(50, deadlineIn(10s)));

  secret.publish(*next);
  const auto swapped = Clock::now();
  EXPECT_TRUE(waitFor([&] { return servedSerial(port) == next->serial; }, swapped + 2s))
      << "new handshakes still get " << servedSerial(port);

  auto load_exit = load->waitForExit(deadlineIn(30s));
  ASSERT_TRUE(load_exit);
  load->waitForLine("(?!x)x", deadlineIn(2s));
  EXPECT_THAT(load->output(), HasSubstr("succeeded, 0 failed, 0 errored")) << load->output();
  EXPECT_EQ(0, load_exit->code);

  // /certs shows what is loaded now.
  auto certs = adminGet(proxy->adminPort(), "/certs");
  EXPECT_THAT(certs.body, HasSubstr(next->serial));

  // A broken update keeps the running certificate and is counted.
  const std::string garbage = std::filesystem::temp_directory_path() /
                              ("bulwark-garbage-" + std::to_string(::getpid()) + ".pem");
  std::ofstream(garbage) << "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n";
  secret.publishFiles(garbage, garbage);
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_tls_certificate_reload_failures_total", {},
      [](double v) { return v == 1; }, deadlineIn(5s)));
  EXPECT_EQ(next->serial, servedSerial(port));
}

TEST_F(TlsTest, HalfOpenHandshakesGarbageAndRenegotiationLeaveTheProxyServing) {
  constexpr int kHalfOpen = 1000;
  rlimit files{};
  ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &files));
  if (files.rlim_cur < 4096 && files.rlim_max >= 4096) {
    files.rlim_cur = 4096;  // for this test's sockets and, inherited, bulwark's
    ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &files));
  }
  ASSERT_GE(files.rlim_cur, 2 * kHalfOpen + 100) << "RLIMIT_NOFILE too low for the test";
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("auto", "  tls:\n" + certificatesBlock({api_}) + "    handshakeTimeout: 2s\n")
          .upstream("http1", {up.address()})
          .route()
          .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  const uint16_t admin = proxy->adminPort();
  const auto rss_before = readRssBytes(proxy->process().pid()).value_or(0);

  // Garbage instead of a ClientHello: closed, counted.
  std::string error;
  int garbage = connectTcp("127.0.0.1", port, deadlineIn(2s), &error);
  ASSERT_GE(garbage, 0) << error;
  ASSERT_TRUE(sendAll(garbage, std::string(64, '\x07'), deadlineIn(2s), &error));
  char buf[256];
  auto end = recvSome(garbage, buf, sizeof(buf), deadlineIn(5s));
  while (end.n > 0) {
    end = recvSome(garbage, buf, sizeof(buf), deadlineIn(5s));  // an alert may come first
  }
  EXPECT_TRUE(end.n == 0 || end.n == -1);
  closeAbortive(garbage);
  EXPECT_TRUE(waitFor([&] { return handshakes(admin, "listener", "public", "malformed") >= 1; },
                      deadlineIn(5s)));

  // A TLS 1.2 client asking to renegotiate is refused; the proxy goes on.
  auto renegotiate =
      runTool("/bin/sh", {"-c", "printf 'R\\n' | openssl s_client -tls1_2 -connect 127.0.0.1:" +
                                    std::to_string(port) + " -servername api.test 2>&1"});
  EXPECT_THAT(renegotiate.output, HasSubstr("RENEGOTIATING"));

  // A thousand clients that send half a ClientHello and stall.
  std::vector<int> stalled;
  for (int i = 0; i < kHalfOpen; ++i) {
    int fd = connectTcp("127.0.0.1", port, deadlineIn(5s), &error);
    ASSERT_GE(fd, 0) << "connection " << i << ": " << error;
    ASSERT_TRUE(sendAll(fd, std::string("\x16\x03\x01\x02\x00\x01", 6), deadlineIn(2s), &error));
    stalled.push_back(fd);
  }
  // Others are still served meanwhile, and memory stays bounded.
  auto ok = curlHttps("api.test", port, "/", {"--cacert", pki_->caCertificate()});
  EXPECT_THAT(ok.output, HasSubstr("status=200")) << ok.output;
  const auto rss_during = readRssBytes(proxy->process().pid()).value_or(0);
  // OpenSSL holds a record buffer and a handshake message buffer (16 KiB each) per handshake in
  // progress; the handshake timeout bounds how long. 64 KiB per connection is the ceiling.
  uint64_t ceiling = kHalfOpen * 64UL * 1024;
#if defined(__SANITIZE_ADDRESS__)
  // The same ceiling in ASan's units (71 MiB measured there): its allocator rounds each block
  // and its redzones up to a size class (up to a quarter more), adds a shadow byte per 8 and
  // keeps freed blocks in a 4 MiB quarantine (cmake/BulwarkAddTest.cmake).
  ceiling = ceiling * 3 / 2 + (4UL << 20);
#elif defined(__SANITIZE_THREAD__)
  // The same ceiling in TSan's units (356 MiB measured there): it keeps shadow and metadata
  // beside every byte an application touches, and rounds blocks up to size classes too.
  ceiling *= 8;
#endif
  EXPECT_LT(rss_during, rss_before + ceiling)
      << "RSS grew from " << rss_before << " to " << rss_during << " bytes";
  EXPECT_TRUE(
      waitFor([&] { return handshakes(admin, "listener", "public", "timeout") >= kHalfOpen; },
              deadlineIn(15s)))
      << handshakes(admin, "listener", "public", "timeout");
  for (int fd : stalled) {
    closeAbortive(fd);
  }
  auto after = curlHttps("api.test", port, "/", {"--cacert", pki_->caCertificate()});
  EXPECT_THAT(after.output, HasSubstr("status=200")) << after.output;
}

}  // namespace
}  // namespace bulwark::testing
