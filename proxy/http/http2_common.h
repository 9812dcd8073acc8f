#pragma once

// Shared machinery of the HTTP/2 server and client codecs: one nghttp2 session on one
// network::CodecConnection, per-stream send/receive buffers, flow control, watermarks and the
// deferred flush that keeps nghttp2 callbacks out of encode calls.

#include <cstdint>
#include <forward_list>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include "common/result.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/headers.h"
#include "proxy/network/buffer.h"
#include "proxy/network/codec_connection.h"

namespace bulwark::http {

/** Per-stream receive window we advertise (SETTINGS_INITIAL_WINDOW_SIZE) unless configured. */
inline constexpr uint32_t kHttp2DefaultInitialWindow = 256 * 1024;
/** Connection-level receive window. Consumed eagerly (see Http2ConnectionBase), so it only sets
 *  how often WINDOW_UPDATE(0) is sent; per-stream windows bound the memory. */
inline constexpr uint32_t kHttp2ConnectionWindow = 1024 * 1024;
/** A stream's pending outbound bytes above this raise onAboveWriteBufferHighWatermark. */
inline constexpr size_t kHttp2StreamHighWatermark = 1024UL * 1024;
/** ...and at or below this, once above, raise onBelowWriteBufferLowWatermark. */
inline constexpr size_t kHttp2StreamLowWatermark = 256UL * 1024;

/** Largest stream id; as GOAWAY last-stream-id it marks the graceful shutdown notice. */
inline constexpr int32_t kHttp2MaxStreamId = 0x7fffffff;

/** HTTP/2 connection-specific header names a sender must not emit (RFC 9113 §8.2.2). */
bool isHttp2ConnectionSpecificHeader(std::string_view lower_name);

/**
 * nghttp2_nv storage for one header block: owns nothing, points into strings that must outlive
 * the submit call (nghttp2 copies the block during submit).
 * Thread: value type, owning worker.
 */
class Http2HeaderBlock {
public:
  // Room for a typical request or response, so building one block allocates once.
  Http2HeaderBlock() { nva_.reserve(16); }
  void add(std::string_view name, std::string_view value);
  nghttp2_nv* data() { return nva_.data(); }
  size_t size() const { return nva_.size(); }

private:
  std::vector<nghttp2_nv> nva_;
};

/** Header names lower-cased for one block; a list, so the views the block holds stay valid. */
using LoweredNames = std::forward_list<std::string>;

/** Copies regular headers into block, lower-casing stray upper-case names (kept in lowered)
 *  and dropping connection-specific ones and, when drop_host, "host". */
void appendRegularHeaders(const HeaderMap& headers, bool drop_host, Http2HeaderBlock& block,
                          LoweredNames& lowered);

class Http2ConnectionBase;

/**
 * One HTTP/2 stream as both codecs see it: outbound body buffer fed to nghttp2 through a data
 * provider, inbound body buffer handed to the decoder, and the flags that decide how the stream
 * ended. Owned by its Http2ConnectionBase; destroyed through deferredDelete after it closes so
 * callers still on the stack keep a valid reference.
 * Thread: owning worker.
 */
class Http2StreamBase : public Stream, public event::DeferredDeletable {
public:
  explicit Http2StreamBase(Http2ConnectionBase& parent);
  ~Http2StreamBase() override;
  Http2StreamBase(const Http2StreamBase&) = delete;
  Http2StreamBase& operator=(const Http2StreamBase&) = delete;

  // Stream
  void setCallbacks(StreamCallbacks* callbacks) override { callbacks_ = callbacks; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;
  size_t bufferedBytes() const override { return send_buf_.length(); }

  int32_t id() const { return id_; }

protected:
  friend class Http2ConnectionBase;

  // Events the connection delivers; implemented by the server and client stream.
  /** A complete header block arrived (first headers, 1xx, or trailers). */
  virtual void onHeaderBlock(const nghttp2_frame* frame) = 0;
  /** A header field of the block in progress; returns an nghttp2 callback result. */
  virtual int onHeaderField(std::string_view name, std::string_view value) = 0;
  /** Hands inbound body to the decoder (drops it when there is none). Bytes a decoder leaves
   *  in data stay buffered and come first in the next call. */
  virtual void decodeBody(evbuffer* data, bool end_stream) = 0;
  /** Body bytes arrived (before delivery); server enforces the body limit here. */
  virtual void onBodyBytes(size_t /*len*/) {}
  /** The nghttp2 stream closed; the connection removes the stream afterwards. */
  virtual void onClosed(uint32_t error_code) = 0;
  /** RST_STREAM error code to send for a local reset with this reason. */
  virtual uint32_t resetCode(StreamResetReason reason) const = 0;

  /** Submits headers; with a data provider unless end_stream. */
  void submitHeaders(Http2HeaderBlock& block, bool end_stream);
  /** Queues body bytes; dropped unless headers went first and the stream is still open. */
  void encodeDataImpl(evbuffer* data, bool end_stream);
  /** Queues trailers (empty: ends the stream with an empty DATA frame); same conditions. */
  void encodeTrailersImpl(const HeaderMap& trailers);
  /** Tells the owner the stream is gone (once; never after a local reset) and stops events. */
  void notifyReset(StreamResetReason reason, std::string_view detail);
  /** Combined (own buffer or connection) above-watermark state changed: tell the owner. */
  void updateWatermarkState();
  /** A DATA frame ended: delivers recv_buf_ and accounts the bytes for flow control. */
  void deliverBody(bool end_stream);
  /** Gives the peer window back for bytes the decoder received (withheld while disabled). */
  void consumeDelivered(size_t bytes);
  /** Puts a DATA frame deferred by the read callback back in nghttp2's queue when useful. */
  void resumeData();

  static ssize_t onDataSourceRead(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                  size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                                  void* user_data);

  Http2ConnectionBase& parent_;
  StreamCallbacks* callbacks_ = nullptr;
  int32_t id_ = 0;
  network::LazyBuffer send_buf_;
  network::LazyBuffer recv_buf_;
  std::unique_ptr<HeaderMap> pending_trailers_;
  std::list<std::unique_ptr<Http2StreamBase>>::iterator self_;

  // Outbound state.
  bool headers_submitted_ = false;
  bool local_end_requested_ = false;    // the owner finished its side (data or trailers pending)
  bool local_end_sent_ = false;         // a frame with END_STREAM left (or trailers)
  bool data_deferred_ = false;          // the read callback returned NGHTTP2_ERR_DEFERRED
  bool reset_after_local_end_ = false;  // server local reply: RST_STREAM(NO_ERROR) after END_STREAM
  bool own_above_high_ = false;
  bool notified_above_high_ = false;

  // Inbound state.
  bool remote_end_ = false;
  bool remote_reset_ = false;  // peer sent RST_STREAM
  uint32_t remote_reset_code_ = 0;
  bool protocol_error_ = false;  // nghttp2 rejected a frame of this stream
  size_t frame_body_bytes_ = 0;  // received in the DATA frame being read
  int read_disable_count_ = 0;
  size_t unconsumed_bytes_ = 0;  // delivered while read-disabled; WINDOW_UPDATE withheld
  uint64_t received_body_bytes_ = 0;

  // End state.
  bool local_reset_ = false;  // resetStream() was called: no callback may follow
  bool silenced_ = false;     // owner already told (reset) or stream done
  bool closed_ = false;       // removed from the connection
};
using Http2StreamBasePtr = std::unique_ptr<Http2StreamBase>;

/**
 * The nghttp2 session plus everything both directions share. Output is never written from
 * inside an encode call: encode calls queue frames in nghttp2 and schedule a flush, which runs
 * at the end of dispatch() or on a zero-delay timer. That keeps nghttp2 callbacks (stream close,
 * resets) away from callers that are in the middle of an encode, and batches frames into fewer
 * writes.
 * Flow control: automatic WINDOW_UPDATE is off. The connection window is consumed as soon as
 * bytes arrive (so one paused stream cannot stall the others); a stream's window is consumed
 * when its bytes reach the decoder, except while the stream is read-disabled, so the peer can
 * have at most one stream window in flight per paused stream.
 * Backpressure out: a stream's send buffer raises its own watermark callbacks; while the
 * connection is above its high watermark nothing is sent at all (frames wait inside nghttp2,
 * whose outbound-ACK limit then catches SETTINGS/PING floods from a peer that does not read).
 * Thread: owning worker.
 */
class Http2ConnectionBase {
public:
  virtual ~Http2ConnectionBase();
  Http2ConnectionBase(const Http2ConnectionBase&) = delete;
  Http2ConnectionBase& operator=(const Http2ConnectionBase&) = delete;

  /** Bytes of body queued in streams' send buffers, summed (tests and stats). */
  size_t bufferedOutboundBytes() const;
  /** Bytes of inbound body held in streams' receive buffers, summed (tests and stats). */
  size_t bufferedInboundBytes() const;
  /** Streams the codec still owns (open, or reset but not yet closed by nghttp2). */
  size_t streamCount() const { return streams_.size(); }
  /** Whether serialized frames are buffered here (never between loop turns once written). */
  bool holdsOutputBuffer() const { return output_.held(); }

protected:
  friend class Http2StreamBase;

  Http2ConnectionBase(network::CodecConnection& connection, bool server);

  /** Creates the session; options and settings come from the derived class. */
  void initSession(nghttp2_option* option, const std::vector<nghttp2_settings_entry>& settings);

  Status dispatchImpl(evbuffer* input);
  /** Sends whatever nghttp2 has queued, now (not from inside an encode call). */
  void sendPendingFrames();
  /** Flushes at the end of dispatch or on the next loop turn. */
  void scheduleFlush();
  void onAboveHighWatermarkImpl();
  void onBelowLowWatermarkImpl();
  /** Resets every remaining stream with reason and marks the session dead. */
  void resetAllStreams(StreamResetReason reason, std::string_view detail);
  void registerStream(Http2StreamBasePtr&& stream);
  void removeStream(Http2StreamBase& stream);
  Http2StreamBase* findStream(int32_t stream_id);
  /** Called after each flush that ran outside dispatch() (the flush timer). */
  virtual void afterFlush() {}
  /** A stream left the codec (closed or reset), outside resetAllStreams(). */
  virtual void onStreamRemoved() {}
  /** nghttp2 reset a stream because the peer broke a stream-level rule. */
  virtual void onPeerCausedReset() {}
  /** Reports a reset to stream's owner on the next loop turn (never from inside an encode). */
  void deferReset(Http2StreamBase& stream, StreamResetReason reason, std::string detail);
  void runDeferredResets();
  void onFlushTimer();
  /** A HEADERS frame begins a new remote stream (server) or a block on a known stream. */
  virtual int onBeginHeaders(const nghttp2_frame* frame) = 0;
  /** A non-stream frame arrived (GOAWAY, PING, SETTINGS). */
  virtual void onConnectionFrame(const nghttp2_frame* /*frame*/) {}
  /** nghttp2 rejected a frame; stream-level or connection-level. */
  virtual void onInvalidFrame(const nghttp2_frame* frame, int lib_error_code);

  // nghttp2 callbacks.
  static ssize_t onSend(nghttp2_session*, const uint8_t* data, size_t length, int, void* user_data);
  static int onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                        size_t length, nghttp2_data_source* source, void* user_data);
  static int onBeginHeadersCb(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int onHeaderCb(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                        size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                        void* user_data);
  static int onFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int onDataChunkRecvCb(nghttp2_session*, uint8_t flags, int32_t stream_id,
                               const uint8_t* data, size_t len, void* user_data);
  static int onStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data);
  static int onFrameSendCb(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int onFrameNotSendCb(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code,
                              void* user_data);
  static int onInvalidFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame, int lib_error_code,
                                  void* user_data);
  /** Moves output_ into the connection. */
  void writeOutput();
  /** Marks the session unusable; later dispatch() calls fail with this detail. */
  void markDead(std::string detail);

  network::CodecConnection& connection_;
  const bool server_;
  nghttp2_session* session_ = nullptr;
  network::LazyBuffer output_;  // frames serialized this turn; pooled, so none while idle
  std::list<Http2StreamBasePtr> streams_;
  std::unordered_map<int32_t, Http2StreamBase*> by_id_;
  event::TimerPtr flush_timer_;
  bool dispatching_ = false;
  bool sending_ = false;
  bool connection_above_high_ = false;
  bool dead_ = false;       // no more input accepted; dispatch() fails with dead_detail_
  bool torn_down_ = false;  // streams were reset: nothing is sent any more
  std::string dead_detail_;
  struct DeferredReset {
    Http2StreamBase* stream;
    StreamResetReason reason;
    std::string detail;
  };
  std::vector<DeferredReset> deferred_resets_;
  bool received_any_ = false;
  bool goaway_sent_ = false;
  bool final_goaway_sent_ = false;  // a GOAWAY other than the shutdown notice left
  bool goaway_received_ = false;
  int32_t goaway_received_last_id_ = 0;
};

}  // namespace bulwark::http
