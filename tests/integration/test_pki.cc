#include "tests/integration/test_pki.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

std::atomic<int> pki_counter{0};

/** Runs openssl with `args`; its output (for errors) in *output. */
bool runOpenssl(const std::vector<std::string>& args, std::string* output) {
  ProcessOptions options;
  options.path = "/usr/bin/openssl";
  options.args = args;
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  if (!child) {
    *output = error;
    return false;
  }
  auto status = child->waitForExit(deadlineIn(std::chrono::seconds(30)));
  *output = child->output();
  return status && status->exited && status->code == 0;
}

}  // namespace

std::optional<TestPki> TestPki::create(const std::string& name, std::string* error) {
  TestPki pki;
  pki.dir_ = (std::filesystem::temp_directory_path() /
              ("bulwark-pki-" + std::to_string(::getpid()) + "-" +
               std::to_string(pki_counter.fetch_add(1)) + "-" + name))
                 .string();
  std::filesystem::create_directories(pki.dir_);
  pki.ca_.certificate = pki.dir_ + "/ca.crt";
  pki.ca_.key = pki.dir_ + "/ca.key";
  std::string output;
  if (!runOpenssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                   "-nodes", "-keyout", pki.ca_.key, "-out", pki.ca_.certificate, "-days", "2",
                   "-subj", "/CN=" + name},
                  &output)) {
    *error = "openssl req (CA) failed: " + output;
    return std::nullopt;
  }
  return pki;
}

std::optional<TestCertificate> TestPki::issue(const std::string& common_name,
                                              const std::string& sans, std::string* error) {
  const std::string base = dir_ + "/" + common_name + "-" + std::to_string(++issued_);
  TestCertificate cert{base + ".crt", base + ".key", ""};
  std::ofstream(base + ".ext") << "subjectAltName=" << sans << "\n";
  std::string output;
  if (!runOpenssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                   "-keyout", cert.key, "-out", base + ".csr", "-subj", "/CN=" + common_name},
                  &output)) {
    *error = "openssl req failed: " + output;
    return std::nullopt;
  }
  if (!runOpenssl(
          {"x509", "-req", "-in", base + ".csr", "-CA", ca_.certificate, "-CAkey", ca_.key,
           "-CAcreateserial", "-out", cert.certificate, "-days", "2", "-extfile", base + ".ext"},
          &output)) {
    *error = "openssl x509 failed: " + output;
    return std::nullopt;
  }
  ProcessOptions options;
  options.path = "/usr/bin/openssl";
  options.args = {"x509", "-in", cert.certificate, "-noout", "-serial"};
  auto child = ChildProcess::spawn(options, error);
  if (!child) {
    return std::nullopt;
  }
  auto serial = child->waitForLine("^serial=([0-9A-Fa-f]+)", deadlineIn(std::chrono::seconds(30)));
  if (!serial) {
    *error = "openssl x509 -serial printed no serial: " + child->output();
    return std::nullopt;
  }
  cert.serial = (*serial)[1];
  return cert;
}

}  // namespace bulwark::testing
