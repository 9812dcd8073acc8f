#pragma once

// TLS as a transport under network::Connection (Envoy's transport socket, reduced): a TlsContext
// holds the OpenSSL SSL_CTX(s) built once per config from a listener's or an upstream's `tls`
// block; each TLS connection gets an SSL from it and drives the handshake, reads and writes
// non-blocking on its worker's loop (SSL over the socket, one record of up to 16 KiB per write).
// The codecs above see plaintext bytes and never know.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>

#include "common/result.h"
#include "proxy/config/spec.h"

namespace bulwark::network {

/**
 * Where a handshake's outcome goes (metrics): "ok" or a failure reason such as "no_client_cert",
 * "unknown_ca", "bad_certificate", "protocol_version", "san_mismatch", "timeout", "http_request"
 * (plaintext HTTP sent to a TLS port), "other".
 */
using TlsHandshakeRecorder = std::function<void(
    std::string_view result, std::chrono::steady_clock::duration duration, bool session_reused)>;

/**
 * One side's TLS settings, compiled. Server contexts pick a certificate by SNI (each
 * certificate's SANs, wildcards included; the first is the default) and verify client
 * certificates in the MUTUAL modes; client contexts verify the upstream (the system store unless
 * caCertificates is given, SANs or the SNI name) and present a client certificate in MUTUAL.
 * Thread: built on the main thread, then shared read-only by workers (SSL_new is thread-safe).
 */
class TlsContext {
public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  /** `alpn`: protocols offered to clients, in preference order (e.g. h2, http/1.1). */
  static Result<std::shared_ptr<TlsContext>> server(const config::ListenerTlsSpec& spec,
                                                    const std::vector<std::string>& alpn,
                                                    TlsHandshakeRecorder recorder);
  /** `http2`: offer ALPN h2 (else http/1.1). */
  static Result<std::shared_ptr<TlsContext>> client(const config::UpstreamTlsSpec& spec, bool http2,
                                                    TlsHandshakeRecorder recorder);

  bool isServer() const { return server_; }
  std::chrono::milliseconds handshakeTimeout() const { return handshake_timeout_; }
  /**
   * A new SSL for one connection; `sni` (client side) names the server asked for and
   * `session_key` (client side, the host's address) picks the session to resume.
   */
  SSL* newSsl(const std::string& sni, const std::string& session_key) const;
  void record(std::string_view result, std::chrono::steady_clock::duration duration,
              bool reused) const;

  /** Client SAN allow-list check of the verified peer (exact, or "prefix*"). */
  bool sanAllowed(X509* peer) const;
  bool checksSans() const { return !subject_alt_names_.empty(); }
  /** forwardClientCertDetails: the verified client certificate goes upstream in XFCC. */
  bool forwardsClientCert() const { return forward_client_cert_; }

private:
  TlsContext() = default;
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpnSelect(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                          const unsigned char* in, unsigned int inlen, void* arg);
  static int onVerify(int preverify_ok, X509_STORE_CTX* store);
  static int onNewSession(SSL* ssl, SSL_SESSION* session);

  bool server_ = false;
  std::vector<SSL_CTX*> contexts_;               // server: one per certificate, [0] the default
  std::vector<std::vector<std::string>> names_;  // DNS SANs of each certificate
  std::vector<unsigned char> alpn_wire_;         // length-prefixed protocol list
  std::vector<std::string> subject_alt_names_;
  bool verify_hostname_from_sni_ = false;
  bool forward_client_cert_ = false;
  std::chrono::milliseconds handshake_timeout_{10000};
  TlsHandshakeRecorder recorder_;
  // Client side: the last session each host gave us, resumed by the next connection to it (a
  // pool's new connections skip the full handshake). Shared by the workers.
  mutable std::mutex sessions_mutex_;
  mutable std::map<std::string, SSL_SESSION*> sessions_;
};
using TlsContextSharedPtr = std::shared_ptr<const TlsContext>;

/** Index of the SSL ex_data slot holding the owning TlsSocket. */
int tlsSocketIndex();

/**
 * The TLS state of one connection: its SSL, whether the handshake finished, and why it failed.
 * Thread: the connection's worker.
 */
class TlsSocket {
public:
  TlsSocket(TlsContextSharedPtr context, SSL* ssl, std::string session_key);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  SSL* ssl() const { return ssl_; }
  const TlsContext& context() const { return *context_; }
  bool handshakeDone() const { return handshake_done_; }
  /** The handshake finished: the connection's facts (SNI, client certificate) are read once. */
  void setHandshakeDone();
  std::chrono::steady_clock::time_point started() const { return started_; }
  /** Application data arrived (after it, a TLS error is a broken connection, not a refusal). */
  bool receivedData() const { return received_data_; }
  void setReceivedData() { received_data_ = true; }
  /** Set by the verify callback when the peer's SANs are not allowed. */
  void setSanMismatch() { san_mismatch_ = true; }
  /** The failure reason of the last handshake error (reads the OpenSSL error queue). */
  std::string failureReason(int ssl_error);

  /** Facts for the access log and headers (empty before the handshake ends). */
  std::string_view version() const;
  std::string_view alpn() const;
  /** The server name the client asked for, lower-case. */
  const std::string& sni() const { return sni_; }
  const std::string& peerUriSan() const { return peer_uri_san_; }
  /**
   * Envoy's x-forwarded-client-cert value for the verified peer certificate:
   * `Hash=<sha256 of DER, hex>;URI=<uri SAN>;DNS=<dns SAN>...`; empty without one. Computed on
   * first use and kept: every request of the connection carries the same value.
   */
  const std::string& clientCertDetails();
  const std::string& sessionKey() const { return session_key_; }

private:
  std::string computeClientCertDetails() const;

  TlsContextSharedPtr context_;
  SSL* ssl_;
  std::string session_key_;
  bool handshake_done_ = false;
  std::string sni_;
  std::string peer_uri_san_;
  std::optional<std::string> client_cert_details_;
  bool received_data_ = false;
  bool san_mismatch_ = false;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace bulwark::network
