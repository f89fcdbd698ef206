// The audio receive path in C, compiled into _aec3_shim.so (aec3_build.py) beside
// send_path.cpp and speaker_path.cpp: for each datagram on the ICE pair's socket, on a
// thread of its own, what the event loop does in Python (hello_tui/media/aiortc_adapter.py):
// SRTP unprotect (a libsrtp session of its own on the rx key: pylibsrtp's bundled libsrtp,
// through the srtp_unprotect address Python hands it), the RTP header, the receiver's
// RFC 3550 statistics (aiortc's StreamStatistics.add), the jitter buffer (a port of
// SpeechJitterBuffer, step for step: tests pin both to the same frames and counters),
// libopus (the receiver's own OpusDecoder state: one decoder whichever side decodes, so
// concealment and FEC read the same history) and the speaker's C playout buffer
// (speaker_path.cpp's po_push, which takes the buffer's own lock). Anything that is not
// the audio stream's RTP (STUN, DTLS, SRTCP, other SSRCs) goes to Python unchanged,
// through a bounded ring and an eventfd the loop reads (media/native_recv.py).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

extern "C" void po_push(void* p, const int16_t* s, int n, double now);

namespace {

constexpr int kRate = 48000;
constexpr int kFrame = 960;  // aiortc's SAMPLES_PER_FRAME: the first guess of a packet's length
constexpr int kMaxFrame = 5760;  // opus_decoder.MAX_FRAME (120 ms)
constexpr int kMaxPayload = 1500;  // longer RTP payloads are dropped (an Opus packet is < 1300)
constexpr int kMaxHeld = 256;  // AudioTuning.capacity is bounded to this (Python checks it)
constexpr int kWindow = 128;  // SpeechJitterBuffer.WINDOW
constexpr int kMaxMisorder = 100;  // SpeechJitterBuffer.MAX_MISORDER
constexpr int kDatagram = 65536;  // the largest UDP datagram (what recvfrom may return)
constexpr int kSlot = 2048;  // one datagram for Python; longer ones are dropped and counted
constexpr int kSlots = 64;
constexpr int kBurst = 64;  // datagrams read per wake before polling again

using OpusDecodeFn = int (*)(void*, const unsigned char*, int32_t, int16_t*, int, int);
using SrtpUnprotectFn = int (*)(void*, void*, int*);

double thread_time() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double monotonic() {  // time.monotonic()
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double wallclock() {  // time.time()
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int seq_diff(int a, int b) { return ((a - b + 0x8000) & 0xFFFF) - 0x8000; }
int64_t ts_diff(uint32_t a, uint32_t b) {
    return static_cast<int64_t>((static_cast<uint64_t>(a) - b + 0x80000000ULL) & 0xFFFFFFFFULL) -
           0x80000000LL;
}
int64_t floordiv(int64_t a, int64_t b) {  // Python's // on ints (b > 0)
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}
// Python's float // (Objects/floatobject.c, float_floor_div), for the target's frames.
double py_floordiv(double vx, double wx) {
    double mod = std::fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) div -= 1.0;
    }
    double floordiv;
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, vx / wx);
    }
    return floordiv;
}

// opus_decoder.has_lbrr and its helpers (RFC 6716 3.2), over untrusted bytes.
int frame_samples(int toc) {
    int config = toc >> 3;
    static const int silk[] = {480, 960, 1920, 2880}, hybrid[] = {480, 960},
                     celt[] = {120, 240, 480, 960};
    if (config < 12) return silk[config & 3];
    if (config < 16) return hybrid[config & 1];
    return celt[config & 3];
}
// The first frame of an Opus packet: its offset and length (length 0: malformed or empty).
void first_frame(const uint8_t* p, int len, int* at, int* flen) {
    *at = 1;
    *flen = 0;
    int code = p[0] & 3;
    const uint8_t* body = p + 1;
    int n = len - 1;
    if (code == 0) {
        *flen = n;
        return;
    }
    if (code == 1) {
        *flen = n / 2;
        return;
    }
    if (code == 2) {
        if (n < 1) return;
        int size = body[0], used = 1;
        if (size >= 252) {
            if (n < 2) return;
            size += 4 * body[1];
            used = 2;
        }
        *at = 1 + used;
        *flen = std::max(0, std::min(size, n - used));
        return;
    }
    if (n < 1) return;
    int count = body[0] & 0x3F;
    bool vbr = body[0] & 0x80, padded = body[0] & 0x40;
    int pos = 1, padding = 0;
    while (padded) {
        if (pos >= n) return;
        int v = body[pos++];
        padding += v == 255 ? 254 : v;
        padded = v == 255;
    }
    if (count == 0) return;
    if (vbr) {
        if (pos >= n) return;
        int size = body[pos++];
        if (size >= 252) {
            if (pos >= n) return;
            size += 4 * body[pos++];
        }
        *at = 1 + pos;
        *flen = std::max(0, std::min(size, n - pos));
        return;
    }
    // Python: body[pos : pos + (len(body) - pos - padding) // count] (floor division)
    int64_t span = floordiv(static_cast<int64_t>(n - pos - padding), count);
    int64_t end = std::min<int64_t>(n, pos + span);
    *at = 1 + pos;
    *flen = end > pos ? static_cast<int>(end - pos) : 0;
}
bool has_lbrr(const uint8_t* p, int len) {
    if (len <= 0) return false;
    int toc = p[0];
    if (toc >> 3 >= 16) return false;
    int at, flen;
    first_frame(p, len, &at, &flen);
    if (flen <= 0) return false;
    int f0 = p[at];
    int silk_frames = std::max(1, frame_samples(toc) / 960);
    int lbrr = (f0 >> (7 - silk_frames)) & 1;
    if (toc & 0x4) lbrr |= (f0 >> (6 - 2 * silk_frames)) & 1;
    return lbrr != 0;
}

struct Held {
    uint16_t seq;
    uint32_t ts;
    int len;
    uint8_t data[kMaxPayload];
};

// aiortc's StreamStatistics (rtcrtpreceiver.py), for the audio stream's SSRC.
struct Stats {
    bool has_base = false, has_max = false, has_arrival = false, has_ts = false;
    int base_seq = 0, max_seq = 0;
    int64_t cycles = 0, received = 0, jitter_q4 = 0, last_arrival = 0;
    uint32_t last_ts = 0;
    int clockrate = kRate;

    static bool gt(int a, int b) {  // aiortc.utils.uint16_gt
        return (a > b && a - b < 0x8000) || (a < b && b - a > 0x8000);
    }
    void add(int seq, uint32_t ts, double wall) {
        bool in_order = !has_max || gt(seq, max_seq);
        received++;
        if (!has_base) {
            has_base = true;
            base_seq = seq;
        }
        if (!in_order) return;
        int64_t arrival = static_cast<int64_t>(wall * clockrate);
        if (has_max && seq < max_seq) cycles += 1 << 16;
        max_seq = seq;
        has_max = true;
        if ((!has_ts || ts != last_ts) && received > 1) {
            int64_t diff = (arrival - last_arrival) -
                           (static_cast<int64_t>(ts) - static_cast<int64_t>(last_ts));
            if (diff < 0) diff = -diff;
            jitter_q4 += diff - ((jitter_q4 + 8) >> 4);
        }
        last_arrival = arrival;
        has_arrival = true;
        last_ts = ts;
        has_ts = true;
    }
};

// One frame out of the jitter buffer, as _InlineDecoderQueue._deliver decodes it.
enum Kind { kPlain, kConceal, kFec };

struct RecvPath {
    // AudioTuning
    double min_depth_ms = 20, max_depth_ms = 80;
    int capacity = 32, max_conceal_ms = 100;
    bool decode_fec = true;
    // SpeechJitterBuffer's state
    Held held[kMaxHeld];
    int n_held = 0;
    bool has_next = false, has_last_ts = false, has_toc = false, has_ref = false;
    int next = 0;
    int last_seq = 0;  // the last released packet's (set with last_ts)
    uint32_t last_ts = 0, ref_ts = 0;
    int last_toc = 0;
    int64_t frame = kFrame;
    int64_t ext_ts = 0;
    double delays[kWindow];
    int n_delays = 0, delay_at = 0;  // a ring: the oldest at delay_at once full
    int since_estimate = 0;
    double target_ms = 20, jitter_ms = 0;
    int64_t released = 0, concealed = 0, recovered = 0, gaps = 0, late = 0, duplicates = 0,
            resets = 0;
    Stats stats;
    // The decoder and where the PCM goes: the speaker's playout, or (tests) `collected`.
    void* decoder;
    OpusDecodeFn decode;
    void* playout = nullptr;
    std::vector<int16_t> collected;
    int16_t pcm[kMaxFrame];
    int64_t frames_out = 0, samples_out = 0, decode_errors = 0;
    // The socket side.
    int fd = -1;
    uint32_t ssrc = 0;
    int pt = -1;
    void* srtp = nullptr;
    SrtpUnprotectFn unprotect = nullptr;
    int stop_fd = -1, ring_fd = -1;
    std::thread thread;
    bool running = false;
    int64_t wire_bytes = 0, wire_packets = 0, rtp_packets = 0, auth_failures = 0, replays = 0,
            malformed = 0, to_python = 0, ring_drops = 0, read_errors = 0;
    double last_wall = 0, cpu = 0;
    std::atomic<bool> failed{false};
    std::mutex lock;  // the state above, between the thread and Python's reads and sets
    // The ring to Python: (datagram, address) slots.
    std::mutex ring_lock;
    struct Slot {
        int len;
        sockaddr_storage addr;
        socklen_t addr_len;
        uint8_t data[kSlot];
    };
    Slot* ring = nullptr;
    int ring_head = 0, ring_count = 0;
    uint8_t buf[kDatagram];

    // --- the jitter buffer (SpeechJitterBuffer, same names)
    int find(int seq) const {
        for (int i = 0; i < n_held; i++)
            if (held[i].seq == seq) return i;
        return -1;
    }
    void drop(int i) { held[i] = held[--n_held]; }

    void observe(uint32_t ts, double now) {
        if (!has_ref) {
            ref_ts = ts;
            has_ref = true;
        } else {
            ext_ts += ts_diff(ts, ref_ts);
            ref_ts = ts;
        }
        double d = now - static_cast<double>(ext_ts) / kRate;
        if (n_delays < kWindow) {
            delays[(delay_at + n_delays) % kWindow] = d;
            n_delays++;
        } else {
            delays[delay_at] = d;
            delay_at = (delay_at + 1) % kWindow;
        }
        since_estimate++;
        if (since_estimate >= 8 || n_delays < 8) {
            since_estimate = 0;
            estimate();
        }
    }

    void estimate() {
        double arrived[kWindow];
        for (int i = 0; i < n_delays; i++) arrived[i] = delays[(delay_at + i) % kWindow];
        std::sort(arrived, arrived + n_delays);
        int idx = std::min(n_delays - 1, static_cast<int>(n_delays * 0.95));
        double p95 = (arrived[idx] - arrived[0]) * 1000;
        double frame_ms = static_cast<double>(frame * 1000) / kRate;
        double frames = -py_floordiv(-p95, frame_ms);
        jitter_ms = p95;
        target_ms = std::min(std::max(frames * frame_ms, min_depth_ms), max_depth_ms);
    }

    void reset(int seq) {
        resets++;
        n_held = 0;
        next = seq;
        has_next = true;
        has_last_ts = false;
    }

    // SpeechJitterBuffer.add, then each released frame decoded and played.
    void add(int seq, uint32_t ts, const uint8_t* data, int len, double now) {
        observe(ts, now);
        if (!has_next) {
            next = seq;
            has_next = true;
        }
        int d = seq_diff(seq, next);
        if (d < 0) {
            if (d < -kMaxMisorder) {
                reset(seq);
            } else {
                late++;
                return;
            }
        } else if (d >= 0x4000) {
            reset(seq);
        }
        if (find(seq) >= 0) {
            duplicates++;
            return;
        }
        if (n_held >= kMaxHeld) {  // (capacity <= kMaxHeld: release() never lets this fill)
            reset(seq);
        }
        Held& h = held[n_held++];
        h.seq = static_cast<uint16_t>(seq);
        h.ts = ts;
        h.len = len;
        std::memcpy(h.data, data, len);
        release();
    }

    void release() {
        int64_t out = 0;
        while (n_held) {
            int i = find(next);
            if (i >= 0) {
                Held& p = held[i];
                frame_of(p);
                emit(kPlain, p.data, p.len, 0);
                drop(i);
                next = (next + 1) & 0xFFFF;
                out++;
                continue;
            }
            int first = 0;
            for (int k = 1; k < n_held; k++)
                if (seq_diff(held[k].seq, next) < seq_diff(held[first].seq, next)) first = k;
            int newest = 0;
            for (int k = 1; k < n_held; k++)
                if (seq_diff(held[k].seq, held[first].seq) >
                    seq_diff(held[newest].seq, held[first].seq))
                    newest = k;
            uint32_t expected =
                has_last_ts ? static_cast<uint32_t>(last_ts + frame) : held[first].ts;
            double ahead = static_cast<double>(ts_diff(held[newest].ts, expected) * 1000) / kRate;
            if (ahead <= target_ms && n_held < capacity) break;
            gaps++;
            int64_t missing = ts_diff(held[first].ts, expected);
            int64_t n = std::min<int64_t>(std::max<int64_t>(floordiv(missing, frame), 0),
                                          static_cast<int64_t>(max_conceal_ms) * kRate / 1000 / frame);
            if (has_toc) {
                uint8_t toc = static_cast<uint8_t>(last_toc & 0xFC);
                bool fec = decode_fec && n > 0 && n * frame == missing;
                for (int64_t k = 0; k < (fec ? n - 1 : n); k++) emit(kConceal, &toc, 1, frame);
                if (fec) {
                    bool lbrr = has_lbrr(held[first].data, held[first].len);
                    emit(kFec, held[first].data, held[first].len, frame);
                    recovered += lbrr;
                }
                concealed += n;
                out += n;
            }
            next = held[first].seq;
        }
        released += out;
    }

    void frame_of(const Held& p) {
        if (has_last_ts) {
            // Per packet since the last one released (a gap's step spans the concealed
            // packets too; a sender may change its duration mid-stream: ptime 10 <-> 20).
            int64_t packets = seq_diff(p.seq, last_seq);
            int64_t step = ts_diff(p.ts, last_ts);
            if (packets > 0 && step % packets == 0 && 0 < step / packets &&
                step / packets <= 6 * kFrame)
                frame = step / packets;  // (120 ms: Opus's longest packet)
        }
        last_ts = p.ts;
        last_seq = p.seq;
        has_last_ts = true;
        if (p.len) {
            last_toc = p.data[0];
            has_toc = true;
        }
    }

    // _InlineDecoderQueue._deliver: decode, conceal or recover; the PCM to the playout.
    void emit(Kind kind, const uint8_t* data, int len, int64_t samples) {
        int n;
        if (kind == kPlain) {
            n = decode(decoder, len ? data : nullptr, len, pcm, kMaxFrame, 0);
        } else if (kind == kConceal) {
            n = decode(decoder, nullptr, 0, pcm, static_cast<int>(std::min<int64_t>(samples, kMaxFrame)), 0);
        } else {
            n = decode(decoder, data, len, pcm, static_cast<int>(std::min<int64_t>(samples, kMaxFrame)), 1);
        }
        if (n < 0) {  // as Python: the frame is dropped, the decoder kept
            decode_errors++;
            return;
        }
        if (n == 0) return;
        frames_out++;
        samples_out += n;
        if (playout)
            po_push(playout, pcm, n, NAN);
        else if (collected.size() < 48000 * 600)  // tests: bounded all the same
            collected.insert(collected.end(), pcm, pcm + n);
    }

    // --- the socket side
    void to_ring(const uint8_t* data, int len, const sockaddr_storage& addr, socklen_t alen) {
        std::lock_guard<std::mutex> g(ring_lock);
        if (len > kSlot || ring_count == kSlots) {
            ring_drops++;
            return;
        }
        Slot& s = ring[(ring_head + ring_count) % kSlots];
        s.len = len;
        s.addr = addr;
        s.addr_len = alen;
        std::memcpy(s.data, data, len);
        ring_count++;
        to_python++;
        uint64_t one = 1;
        ssize_t rc = ::write(ring_fd, &one, sizeof one);
        (void)rc;
    }

    // One datagram: ours when it is the stream's SRTP, else Python's.
    void datagram(uint8_t* p, int n, const sockaddr_storage& addr, socklen_t alen) {
        if (n <= 0) return;
        bool srtp_rtp = n >= 12 && p[0] > 127 && p[0] < 192 && !(p[1] >= 192 && p[1] <= 208);
        uint32_t packet_ssrc = srtp_rtp ? (uint32_t(p[8]) << 24 | uint32_t(p[9]) << 16 |
                                           uint32_t(p[10]) << 8 | p[11])
                                        : 0;
        if (!srtp_rtp || packet_ssrc != ssrc || (p[1] & 0x7F) != pt) {
            to_ring(p, n, addr, alen);
            return;
        }
        double t0 = thread_time();
        std::lock_guard<std::mutex> g(lock);
        wire_bytes += n;  // (as _FastPath counts: before unprotect)
        wire_packets++;
        int len = n;
        int status = unprotect(srtp, p, &len);
        if (status != 0) {
            if (status == 9 || status == 10)  // srtp_err_status_replay_fail / _old
                replays++;
            else
                auth_failures++;
            cpu += thread_time() - t0;
            return;
        }
        packet(p, len, wallclock(), monotonic());
        cpu += thread_time() - t0;
    }

    // RtpPacket.parse's checks, then the receiver (stats) and the jitter buffer.
    void packet(const uint8_t* p, int len, double wall, double now) {
        if (len < 12 || p[0] >> 6 != 2) {
            malformed++;
            return;
        }
        int cc = p[0] & 0x0F;
        int pos = 12 + 4 * cc;
        if (len < pos) {
            malformed++;
            return;
        }
        if (p[0] & 0x10) {
            if (len < pos + 4) {
                malformed++;
                return;
            }
            int ext = 4 * ((p[pos + 2] << 8) | p[pos + 3]);
            pos += 4;
            if (len < pos + ext) {
                malformed++;
                return;
            }
            pos += ext;
        }
        int end = len;
        if (p[0] & 0x20) {
            int pad = p[len - 1];
            if (!pad || pad > len - pos) {
                malformed++;
                return;
            }
            end = len - pad;
        }
        if (end - pos > kMaxPayload) {
            malformed++;
            return;
        }
        int seq = (p[2] << 8) | p[3];
        uint32_t ts = uint32_t(p[4]) << 24 | uint32_t(p[5]) << 16 | uint32_t(p[6]) << 8 | p[7];
        rtp_packets++;
        last_wall = wall;
        stats.add(seq, ts, wall);
        add(seq, ts, p + pos, end - pos, now);
    }

    void run() {
        pollfd fds[2] = {{fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
        while (true) {
            int r = ::poll(fds, 2, -1);
            if (r < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents) break;
            if (fds[0].revents & (POLLERR | POLLNVAL)) {
                // a pending ICMP error: recvfrom below reports (and clears) it
            }
            for (int i = 0; i < kBurst; i++) {
                sockaddr_storage addr{};
                socklen_t alen = sizeof addr;
                ssize_t n = ::recvfrom(fd, buf, sizeof buf, MSG_DONTWAIT,
                                       reinterpret_cast<sockaddr*>(&addr), &alen);
                if (n < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                    // ECONNREFUSED and the like: asyncio hands them to error_received
                    // (aioice ignores them); anything else ends the stretch.
                    read_errors++;
                    if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
                        continue;
                    failed = true;
                    uint64_t one = 1;
                    ssize_t rc = ::write(ring_fd, &one, sizeof one);
                    (void)rc;
                    return;
                }
                datagram(buf, static_cast<int>(n), addr, alen);
            }
        }
    }
};

constexpr int kJitterFields = 24;
constexpr int kStatsFields = 12;
constexpr int kCounterFields = 18;

}  // namespace

extern "C" {

// decoder: an OpusDecoder* (the receiver's own: mono 48 kHz); decode_fn: opus_decode from
// the library that made it. tuning: min_depth_ms, max_depth_ms, capacity (<= 256),
// max_conceal_ms, decode_fec.
void* rp_new(void* decoder, void* decode_fn, const double* tuning) {
    int stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int ring_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (stop_fd < 0 || ring_fd < 0) {
        if (stop_fd >= 0) close(stop_fd);
        if (ring_fd >= 0) close(ring_fd);
        return nullptr;
    }
    // Default-initialized, not value-initialized (`()`): every field with a value has its
    // initializer, and the held packets (~390 KB), the arrival delays and the scratch
    // buffers are written before they are read, so their pages stay untouched until used
    // (zeroing them cost ~0.4 MiB of RSS a call).
    auto* rp = new RecvPath;
    rp->decoder = decoder;
    rp->decode = reinterpret_cast<OpusDecodeFn>(decode_fn);
    rp->min_depth_ms = tuning[0];
    rp->max_depth_ms = tuning[1];
    rp->capacity = static_cast<int>(std::min(std::max(tuning[2], 1.0), double(kMaxHeld)));
    rp->max_conceal_ms = static_cast<int>(tuning[3]);
    rp->decode_fec = tuning[4] != 0;
    rp->target_ms = rp->min_depth_ms;
    rp->stop_fd = stop_fd;
    rp->ring_fd = ring_fd;
    rp->ring = new RecvPath::Slot[kSlots];
    return rp;
}

void rp_stop(void* h) {
    auto* rp = static_cast<RecvPath*>(h);
    if (!rp->running) return;
    uint64_t one = 1;
    ssize_t rc = ::write(rp->stop_fd, &one, sizeof one);
    (void)rc;
    rp->thread.join();
    rp->running = false;
    uint64_t v;
    rc = ::read(rp->stop_fd, &v, sizeof v);
    (void)rc;
}

void rp_free(void* h) {
    auto* rp = static_cast<RecvPath*>(h);
    rp_stop(h);
    if (rp->fd >= 0) close(rp->fd);
    close(rp->stop_fd);
    close(rp->ring_fd);
    delete[] rp->ring;
    delete rp;
}

int rp_ring_fd(void* h) { return static_cast<RecvPath*>(h)->ring_fd; }

// The jitter buffer's state (SpeechJitterBuffer's fields): has_next, next, has_last_ts,
// last_ts, has_toc, last_toc, frame, has_ref, ref_ts, ext_ts, since_estimate, target_ms,
// jitter_ms, released, concealed, recovered, gaps, late, duplicates, resets, (the held
// count: rp_get_jitter's), last_seq; then the
// arrival delays (oldest first, at most 128). Held packets are added with rp_hold.
void rp_set_jitter(void* h, const double* s, const double* delays, int n) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    rp->has_next = s[0] != 0;
    rp->next = static_cast<int>(s[1]) & 0xFFFF;
    rp->has_last_ts = s[2] != 0;
    rp->last_ts = static_cast<uint32_t>(s[3]);
    rp->last_seq = static_cast<int>(s[21]) & 0xFFFF;
    rp->has_toc = s[4] != 0;
    rp->last_toc = static_cast<int>(s[5]) & 0xFF;
    rp->frame = static_cast<int64_t>(s[6]);
    rp->has_ref = s[7] != 0;
    rp->ref_ts = static_cast<uint32_t>(s[8]);
    rp->ext_ts = static_cast<int64_t>(s[9]);
    rp->since_estimate = static_cast<int>(s[10]);
    rp->target_ms = s[11];
    rp->jitter_ms = s[12];
    int64_t* counts[] = {&rp->released, &rp->concealed, &rp->recovered, &rp->gaps,
                         &rp->late,     &rp->duplicates, &rp->resets};
    for (int i = 0; i < 7; i++) *counts[i] = static_cast<int64_t>(s[13 + i]);
    n = std::min(std::max(n, 0), kWindow);
    for (int i = 0; i < n; i++) rp->delays[i] = delays[i];
    rp->n_delays = n;
    rp->delay_at = 0;
    rp->n_held = 0;
}

// A held packet (seq, timestamp, payload) into the jitter buffer, as Python held it: 0, or
// -1 (full, or too long).
int rp_hold(void* h, int seq, uint32_t ts, const uint8_t* data, int len) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    if (rp->n_held >= kMaxHeld || len < 0 || len > kMaxPayload) return -1;
    Held& p = rp->held[rp->n_held++];
    p.seq = static_cast<uint16_t>(seq);
    p.ts = ts;
    p.len = len;
    std::memcpy(p.data, data, len);
    return 0;
}

// The jitter buffer's state as rp_set_jitter takes it (kJitterFields doubles, the held
// count last) and the delays (128 doubles): returns how many delays.
int rp_get_jitter(void* h, double* s, double* delays) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    double v[kJitterFields] = {
        double(rp->has_next), double(rp->next), double(rp->has_last_ts), double(rp->last_ts),
        double(rp->has_toc), double(rp->last_toc), double(rp->frame), double(rp->has_ref),
        double(rp->ref_ts), double(rp->ext_ts), double(rp->since_estimate), rp->target_ms,
        rp->jitter_ms, double(rp->released), double(rp->concealed), double(rp->recovered),
        double(rp->gaps), double(rp->late), double(rp->duplicates), double(rp->resets),
        double(rp->n_held), double(rp->last_seq), 0, 0};
    std::memcpy(s, v, sizeof v);
    for (int i = 0; i < rp->n_delays; i++) delays[i] = rp->delays[(rp->delay_at + i) % kWindow];
    return rp->n_delays;
}

// Held packet i (0 <= i < the held count): its payload into `out` (>= 1500 bytes), seq and
// timestamp into seq_ts; returns the payload's length, or -1.
int rp_held(void* h, int i, double* seq_ts, uint8_t* out) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    if (i < 0 || i >= rp->n_held) return -1;
    seq_ts[0] = rp->held[i].seq;
    seq_ts[1] = rp->held[i].ts;
    std::memcpy(out, rp->held[i].data, rp->held[i].len);
    return rp->held[i].len;
}

// StreamStatistics: has_base, base_seq, has_max, max_seq, cycles, packets_received,
// jitter_q4, has_last_arrival, last_arrival, has_last_timestamp, last_timestamp, clockrate.
void rp_set_stats(void* h, const double* s) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    Stats& st = rp->stats;
    st.has_base = s[0] != 0;
    st.base_seq = static_cast<int>(s[1]);
    st.has_max = s[2] != 0;
    st.max_seq = static_cast<int>(s[3]);
    st.cycles = static_cast<int64_t>(s[4]);
    st.received = static_cast<int64_t>(s[5]);
    st.jitter_q4 = static_cast<int64_t>(s[6]);
    st.has_arrival = s[7] != 0;
    st.last_arrival = static_cast<int64_t>(s[8]);
    st.has_ts = s[9] != 0;
    st.last_ts = static_cast<uint32_t>(s[10]);
    st.clockrate = s[11] > 0 ? static_cast<int>(s[11]) : kRate;
}

void rp_get_stats(void* h, double* out) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    const Stats& st = rp->stats;
    double v[kStatsFields] = {double(st.has_base), double(st.base_seq), double(st.has_max),
                              double(st.max_seq), double(st.cycles), double(st.received),
                              double(st.jitter_q4), double(st.has_arrival),
                              double(st.last_arrival), double(st.has_ts), double(st.last_ts),
                              double(st.clockrate)};
    std::memcpy(out, v, sizeof v);
}

// wire bytes, wire packets (the stream's SRTP datagrams), RTP packets handled, auth
// failures, replays, malformed, datagrams to Python, ring drops, read errors, frames out,
// samples out, decode errors, failed, last arrival (time.time()), cpu seconds, held.
void rp_counters(void* h, double* out) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    double v[kCounterFields] = {
        double(rp->wire_bytes), double(rp->wire_packets), double(rp->rtp_packets),
        double(rp->auth_failures), double(rp->replays), double(rp->malformed),
        double(rp->to_python), double(rp->ring_drops), double(rp->read_errors),
        double(rp->frames_out), double(rp->samples_out), double(rp->decode_errors),
        double(rp->failed.load()), rp->last_wall, rp->cpu, double(rp->n_held), 0, 0};
    std::memcpy(out, v, sizeof v);
}

// Tests: one RTP payload through the jitter buffer and the decoder at time.monotonic()
// `now` (no SRTP, no statistics); the PCM is collected (no playout set).
void rp_test_add(void* h, int seq, uint32_t ts, const uint8_t* data, int len, double now) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    if (len < 0 || len > kMaxPayload) return;
    rp->add(seq & 0xFFFF, ts, data, len, now);
}
// Tests: a plain RTP packet through the header parse, the statistics and the buffer.
void rp_test_packet(void* h, const uint8_t* data, int len, double wall, double now) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    rp->packet(data, len, wall, now);
}
// The collected PCM (tests): up to `max` samples into `out`, taken; returns how many.
int rp_test_take(void* h, int16_t* out, int max) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->lock);
    int n = static_cast<int>(std::min<size_t>(max, rp->collected.size()));
    std::memcpy(out, rp->collected.data(), n * sizeof(int16_t));
    rp->collected.erase(rp->collected.begin(), rp->collected.begin() + n);
    return n;
}

// Read (a dup of) socket `fd` on a thread of its own: the stream `ssrc` with payload type
// `pt`, unprotected with `srtp` (an srtp_t; unprotect_fn: srtp_unprotect from its libsrtp),
// played into `playout` (a speaker_path.cpp Playout). 0, or -1.
int rp_start(void* h, int fd, uint32_t ssrc, int pt, void* srtp, void* unprotect_fn,
             void* playout) {
    auto* rp = static_cast<RecvPath*>(h);
    if (rp->running) return -1;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return -1;
    if (rp->fd >= 0) close(rp->fd);
    rp->fd = dup_fd;
    rp->ssrc = ssrc;
    rp->pt = pt & 0x7F;
    rp->srtp = srtp;
    rp->unprotect = reinterpret_cast<SrtpUnprotectFn>(unprotect_fn);
    rp->playout = playout;
    rp->running = true;
    rp->thread = std::thread([rp] { rp->run(); });
    return 0;
}

// The next datagram for Python: its bytes into `out` (>= 2048), the sender's numeric host
// and port; returns its length, or -1 when the ring is empty.
int rp_ring_pop(void* h, uint8_t* out, char* host, int host_len, int* port) {
    auto* rp = static_cast<RecvPath*>(h);
    std::lock_guard<std::mutex> g(rp->ring_lock);
    if (!rp->ring_count) {
        uint64_t v;
        ssize_t rc = ::read(rp->ring_fd, &v, sizeof v);  // (drained: the loop stops waking)
        (void)rc;
        return -1;
    }
    RecvPath::Slot& s = rp->ring[rp->ring_head];
    rp->ring_head = (rp->ring_head + 1) % kSlots;
    rp->ring_count--;
    std::memcpy(out, s.data, s.len);
    host[0] = 0;
    *port = 0;
    if (s.addr.ss_family == AF_INET) {
        auto* a = reinterpret_cast<sockaddr_in*>(&s.addr);
        inet_ntop(AF_INET, &a->sin_addr, host, host_len);
        *port = ntohs(a->sin_port);
    } else if (s.addr.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&s.addr);
        inet_ntop(AF_INET6, &a->sin6_addr, host, host_len);
        *port = ntohs(a->sin6_port);
    }
    return s.len;
}

}  // extern "C"
