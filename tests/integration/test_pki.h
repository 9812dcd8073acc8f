#pragma once

// A throwaway PKI for TLS tests, made at test time with the openssl command line (ECDSA P-256,
// two-day certificates) in a fresh temp directory: nothing that looks like a real private key is
// ever committed.

#include <optional>
#include <string>

namespace bulwark::testing {

/** A certificate and its key, as PEM files. Thread: value type. */
struct TestCertificate {
  std::string certificate;
  std::string key;
  std::string serial;  // hex, as `openssl x509 -serial` prints it
};

/** One certificate authority. Thread: the test thread. */
class TestPki {
public:
  /** Creates the CA `name` (subject CN=name); nullopt with *error set when openssl fails. */
  static std::optional<TestPki> create(const std::string& name, std::string* error);

  const std::string& caCertificate() const { return ca_.certificate; }
  /**
   * Issues a leaf for `common_name` with `sans` ("DNS:api.test,URI:spiffe://...,IP:127.0.0.1").
   * Each call gets a new serial. nullopt with *error set when openssl fails.
   */
  std::optional<TestCertificate> issue(const std::string& common_name, const std::string& sans,
                                       std::string* error);

private:
  std::string dir_;
  TestCertificate ca_;
  int issued_ = 0;
};

}  // namespace bulwark::testing
