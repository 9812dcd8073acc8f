#include "proxy/upstream/client_codec_factory.h"

#include "proxy/http/http1_client_codec.h"
#include "proxy/http/http2_client_codec.h"

namespace bulwark::upstream {

http::ClientConnectionPtr createClientCodec(const ConnPoolSettings& settings,
                                            network::Connection& connection,
                                            http::ClientConnectionCallbacks& callbacks) {
  if (settings.protocol == PoolProtocol::Http2) {
    http::Http2ClientSettings h2;
    h2.max_concurrent_streams = settings.max_concurrent_streams;
    return std::make_unique<http::Http2ClientConnection>(connection, callbacks, h2);
  }
  return std::make_unique<http::Http1ClientConnection>(connection, callbacks);
}

}  // namespace bulwark::upstream
