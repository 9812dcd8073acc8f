#pragma once

#include "proxy/http/codec.h"
#include "proxy/network/connection.h"
#include "proxy/upstream/conn_pool.h"

namespace bulwark::upstream {

/** Creates the client codec for a freshly connected upstream connection. Thread: worker. */
http::ClientConnectionPtr createClientCodec(const ConnPoolSettings& settings,
                                            network::Connection& connection,
                                            http::ClientConnectionCallbacks& callbacks);

}  // namespace bulwark::upstream
