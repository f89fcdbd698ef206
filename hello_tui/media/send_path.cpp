// The audio send path in C, compiled into _aec3_shim.so (aec3_build.py) beside
// capture_path.cpp: for each processed 20 ms frame (or 10 ms: [audio] ptime_ms, the
// packet's duration chosen at sp_new), on the microphone's thread, what the
// adapter's sender does on the event loop (hello_tui/media/aiortc_adapter.py): the RFC 6465
// level, libopus, the RTP packet as RtpAudioWriter writes it, SRTP, sendto on the ICE pair's
// socket. Python hands it everything it needs (media/native_send.py): the sender's own libopus
// state and opus_encode's address (one encoder whichever side encodes: a switch is seamless,
// and the bytes are the Python path's), a libsrtp session for this SSRC and srtp_protect's
// address (pylibsrtp's bundled libsrtp: nothing is linked here), a dup of the socket and the
// peer's address, the sequence number and timestamp to go on from, the SR counters. It gives
// them back at the end of the stretch (sp_state). The capture thread calls sp_frame through
// capture_path.cpp's hook (cap_set_send), with the Capture's block lock held.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>

#include <fcntl.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kFrame = 960;  // 20 ms at 48 kHz, mono (the only shape the adapter hands over)
constexpr int kShortFrame = 480;  // 10 ms: a packet per processed block (ptime 10)
constexpr int kMaxOpus = 4000;  // opus_encoder.MAX_PACKET
constexpr int kTrailer = 144;  // SRTP_MAX_TRAILER_LEN (tag + MKI), libsrtp 2.x
constexpr uint64_t kNtpEpoch = 2208988800ULL;  // 1900 -> 1970, aiortc's clock

using OpusEncodeFn = int32_t (*)(void*, const int16_t*, int, unsigned char*, int32_t);
using SrtpProtectFn = int (*)(void*, void*, int*);

double thread_time() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// aiortc_adapter._ntp_now: 64-bit NTP time from the wall clock.
uint64_t ntp_now() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t high = static_cast<uint64_t>(ts.tv_sec) + kNtpEpoch;
    uint64_t low = (static_cast<uint64_t>(ts.tv_nsec) << 32) / 1000000000ULL;
    return (high << 32) | low;
}

// aiortc_adapter.audio_level_dbov (RFC 6465 App. A): the sum of squares is exact in int64
// (and in the float64 numpy sums it to), then the same double arithmetic and Python's round.
int level_dbov(const int16_t* s, int n) {
    int64_t sum = 0;
    for (int i = 0; i < n; i++) sum += static_cast<int64_t>(s[i]) * s[i];
    double rms = std::sqrt(static_cast<double>(sum) / (static_cast<double>(n) * 32767.0 * 32767.0));
    if (rms <= 0) return -127;
    double db = std::fmin(std::fmax(20 * std::log10(rms), -127.0), 0.0);
    return static_cast<int>(std::nearbyint(db));
}

void put16(uint8_t* p, uint32_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
    put16(p, v >> 16);
    put16(p + 2, v & 0xFFFF);
}

struct SendPath {
    void* encoder;
    OpusEncodeFn encode;
    int frame_n = kFrame;  // samples a packet (kFrame or kShortFrame): the RTP timestamp's step
    void* srtp;
    SrtpProtectFn protect;
    int fd = -1;  // our dup of the pair's socket
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    int efd = -1;  // written once when C gives up (Python's sender takes over)
    uint8_t pt = 0;
    uint32_t ssrc = 0;
    uint16_t seq = 0;  // the next packet's
    uint32_t ts = 0;
    uint8_t mid[17];  // the mid extension element (header byte + value), or empty
    int mid_len = 0;
    int abs_id = 0, level_id = 0;
    // The SR fields (aiortc's sender) and the transport's counters, carried on.
    uint64_t ntp_last = 0;
    uint32_t rtp_last = 0;
    int64_t packets = 0, octets = 0, frames = 0, wire_bytes = 0, wire_packets = 0;
    int64_t send_errors = 0;
    int last_level = -127;
    bool failed = false;
    double cpu = 0;
    std::mutex snap_lock;  // the snapshot Python reads (never held across a frame's work)
    double snap[14] = {};
    uint8_t buf[16 + 4 + 32 + kMaxOpus + kTrailer];

    // The packet for `pcm` into buf (plain RTP; SRTP with `protect`): its length, or -1.
    // Advances nothing: commit() does, once the packet is out.
    int build(const int16_t* pcm, uint64_t ntp, int* level, int* payload_len) {
        *level = level_dbov(pcm, frame_n);
        uint8_t ext[32];
        int e = 0;
        if (mid_len) {
            std::memcpy(ext, mid, mid_len);
            e = mid_len;
        }
        if (abs_id) {
            uint32_t abs = static_cast<uint32_t>(ntp >> 14) & 0xFFFFFF;
            ext[e++] = static_cast<uint8_t>((abs_id << 4) | 2);
            ext[e++] = static_cast<uint8_t>(abs >> 16);
            ext[e++] = static_cast<uint8_t>(abs >> 8);
            ext[e++] = static_cast<uint8_t>(abs);
        }
        if (level_id) {
            ext[e++] = static_cast<uint8_t>(level_id << 4);
            ext[e++] = static_cast<uint8_t>(-*level & 0x7F);
        }
        uint8_t* p = buf;
        p[0] = e ? 0x90 : 0x80;
        p[1] = static_cast<uint8_t>(0x80 | pt);  // marker: the frame's last (only) payload
        put16(p + 2, seq);
        put32(p + 4, ts);
        put32(p + 8, ssrc);
        int at = 12;
        if (e) {
            while (e % 4) ext[e++] = 0;
            put16(p + 12, 0xBEDE);
            put16(p + 14, static_cast<uint32_t>(e / 4));
            std::memcpy(p + 16, ext, e);
            at = 16 + e;
        }
        int32_t n = encode(encoder, pcm, frame_n, p + at, kMaxOpus);
        if (n < 0) return -1;
        *payload_len = n;
        return at + n;
    }

    void commit(uint64_t ntp, int level, int payload_len) {
        ntp_last = ntp;
        rtp_last = ts;
        octets += payload_len;
        packets++;
        frames++;
        last_level = level;
        seq = static_cast<uint16_t>(seq + 1);
        ts += static_cast<uint32_t>(frame_n);
    }

    void snapshot() {
        double v[] = {double(seq), double(ts), double(frames), double(packets), double(octets),
                      double(ntp_last >> 32), double(ntp_last & 0xFFFFFFFF), double(rtp_last),
                      double(wire_bytes), double(wire_packets), double(send_errors),
                      double(failed), double(last_level), cpu};
        std::lock_guard<std::mutex> g(snap_lock);
        std::memcpy(snap, v, sizeof v);
    }

    void give_up() {
        failed = true;
        snapshot();
        uint64_t one = 1;
        ssize_t rc = ::write(efd, &one, sizeof one);
        (void)rc;
    }

    // One frame from the capture thread: 1 when it was sent (or lost on the wire, as
    // Python's sendto would lose it), 0 when Python should have it.
    int frame(const int16_t* pcm) {
        if (failed || fd < 0) return 0;
        double t0 = thread_time();
        uint64_t ntp = ntp_now();
        int level, payload;
        int len = build(pcm, ntp, &level, &payload);
        if (len < 0) {  // libopus failed: Python's encoder raises for it as before
            give_up();
            return 0;
        }
        if (protect(srtp, buf, &len) != 0) {
            give_up();
            return 0;  // (the encoder took the frame; Python encodes it again)
        }
        ssize_t sent = ::sendto(fd, buf, len, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&addr),
                                addr_len);
        if (sent < 0) {
            send_errors++;
            // A full buffer, a refused or unreachable peer: the packet is lost, as on the
            // Python path (asyncio hands the error to the protocol). Anything else (the
            // socket itself is wrong): nothing was sent and nothing advances, Python
            // sends this frame (encoded again) and the ones after.
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS &&
                errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH &&
                errno != EINTR && errno != EPERM) {
                give_up();
                return 0;
            }
        } else {
            wire_bytes += len;
            wire_packets++;
        }
        commit(ntp, level, payload);
        cpu += thread_time() - t0;
        snapshot();
        return 1;
    }
};

}  // namespace

extern "C" {

// encoder: an OpusEncoder* (the sender's); encode_fn: opus_encode from the library that made it.
// srtp: an srtp_t; protect_fn: srtp_protect from the libsrtp that made it. samples: a packet's
// (480: 10 ms, else 960: 20 ms); the same libopus state encodes either (its frame size is
// per call), so a stretch at 10 ms goes on from, and hands back to, Python's 20 ms frames.
void* sp_new(void* encoder, void* encode_fn, void* srtp, void* protect_fn, int samples) {
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return nullptr;
    auto* sp = new SendPath();
    sp->encoder = encoder;
    sp->frame_n = samples == kShortFrame ? kShortFrame : kFrame;
    sp->encode = reinterpret_cast<OpusEncodeFn>(encode_fn);
    sp->srtp = srtp;
    sp->protect = reinterpret_cast<SrtpProtectFn>(protect_fn);
    sp->efd = efd;
    return sp;
}

void sp_free(void* h) {
    auto* sp = static_cast<SendPath*>(h);
    if (sp->fd >= 0) close(sp->fd);
    close(sp->efd);
    delete sp;
}

int sp_fd(void* h) { return static_cast<SendPath*>(h)->efd; }

// Samples a packet: what the capture hands sp_frame at a time (cap_set_send).
int sp_samples(void* h) { return static_cast<SendPath*>(h)->frame_n; }

// The pair's socket (dup'ed: ours until sp_free) and the peer's numeric address: 0, or -1.
int sp_set_peer(void* h, int fd, const char* host, int port) {
    auto* sp = static_cast<SendPath*>(h);
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    char service[8];
    std::snprintf(service, sizeof service, "%d", port);
    if (getaddrinfo(host, service, &hints, &res) != 0 || !res) return -1;
    std::memcpy(&sp->addr, res->ai_addr, res->ai_addrlen);
    sp->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return -1;
    if (sp->fd >= 0) close(sp->fd);
    sp->fd = dup_fd;
    return 0;
}

// Where the stream goes on from: payload type, SSRC, the next sequence number and RTP
// timestamp; the extensions as RtpAudioWriter writes them (mid: its element, header byte
// included, or empty; an id 0 is not negotiated). The counters count this stretch only.
void sp_set_rtp(void* h, int pt, uint32_t ssrc, int seq, uint32_t ts, const uint8_t* mid,
                int mid_len, int abs_id, int level_id) {
    auto* sp = static_cast<SendPath*>(h);
    sp->pt = static_cast<uint8_t>(pt & 0x7F);
    sp->ssrc = ssrc;
    sp->seq = static_cast<uint16_t>(seq);
    sp->ts = ts;
    sp->mid_len = mid_len > 17 ? 17 : mid_len;
    std::memcpy(sp->mid, mid, sp->mid_len);
    sp->abs_id = abs_id;
    sp->level_id = level_id;
    sp->snapshot();
}

// The capture hook (cap_set_send): see SendPath::frame.
int sp_frame(void* h, const int16_t* pcm) { return static_cast<SendPath*>(h)->frame(pcm); }

// seq, ts (next), frames, packets, octets, ntp high, ntp low, rtp (last), wire bytes,
// wire packets, send errors, failed, last level, cpu seconds: 14 doubles.
void sp_state(void* h, double* out) {
    auto* sp = static_cast<SendPath*>(h);
    std::lock_guard<std::mutex> g(sp->snap_lock);
    std::memcpy(out, sp->snap, sizeof sp->snap);
}

// The packet sp_frame would send for `pcm` (sp_samples of them) at NTP time `ntp` (plain RTP,
// or SRTP with `protect`), into `out` (>= 4200 bytes); advances as a send does. Tests pin it to the
// Python path's bytes. Returns the length, or -1.
int sp_packet(void* h, const int16_t* pcm, uint64_t ntp, int protect, uint8_t* out) {
    auto* sp = static_cast<SendPath*>(h);
    int level, payload;
    int len = sp->build(pcm, ntp, &level, &payload);
    if (len < 0) return -1;
    if (protect && sp->protect(sp->srtp, sp->buf, &len) != 0) return -1;
    sp->commit(ntp, level, payload);
    sp->snapshot();
    std::memcpy(out, sp->buf, len);
    return len;
}

}  // extern "C"
