// The microphone's per-block path in C, compiled into _aec3_shim.so with aec3_shim.cpp
// (aec3_build.py): libpulse's read callback, the capture timeline, the echo pairing and
// the processing stage on whole 10 ms blocks, and 20 ms frames for Python, which is woken
// once per frame through an eventfd (docs/media.md, "The capture path in C").
//
// Two objects:
// * Pairing (cp_*): hello_tui/media/audio_processing.py's CaptureProcessor, line for line
//   (the far ring, the clocks' running medians, the pairing lag, a speaker underrun's gap
//   filled or trimmed), around the shim's Processor. tests/media/test_capture_path.py pins
//   it to the Python class: the same blocks in give the same samples out.
// * Capture (cap_*): what PulseStream._read/_take and DeviceSource._callback do per block
//   (a timeline of capture times that moves only on a jump, the first block after a
//   switch re-pairing, the block kept before anyone listens, the voice counter), then
//   the frames. It never takes the GIL: Python reads frames with cap_pop.
//
// Locks: a Capture's `lock` is held for a whole block (as DeviceSource's _capture_lock);
// its frame queue has a lock of its own, held only for a copy, so the event loop never
// waits behind a block's processing. A Pairing's `lock` guards the far ring (the speaker
// thread writes it); `run` guards the module, which set_module may swap mid-call.
// Lifetime: each stream bound to a Capture holds a count on it; the Capture is freed
// (its eventfd closed) when its owner let go and the last stream was unbound after close.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <vector>

#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

extern "C" {
void aec3_process(void* processor, const int16_t* near, const int16_t* far, int16_t* out,
                  int frames);
float aec3_speech_probability(void* processor);
float aec3_gain_db(void* processor);
void aec3_destroy(void* processor);
}

namespace {

constexpr int kRate = 48000;
constexpr int kBlock = kRate / 100;
constexpr int64_t kFarRing = 1 << 17;
constexpr size_t kClockWindow = 5;
constexpr size_t kResyncAfter = 3;
constexpr double kRealignS = 0.020;
constexpr double kLeadS = 0.010;
constexpr int64_t kMaxGap = kRate / 2;
constexpr int64_t kRefine = kRate * 3 / 10;
constexpr int kFrame = kRate / 50;  // a 20 ms frame, what Python gets
constexpr double kCaptureJumpS = 0.030;  // pulse_streams.CAPTURE_JUMP_S
constexpr int kQueue = 16;  // frames waiting for Python; the oldest goes when it is full
// A block whose reference the speaker has not fed yet waits this long at most, while the
// speaker feeds (last fed within kFarFreshS): see Pairing::wait_for_far.
constexpr double kFarWaitS = 0.020;
constexpr double kFarFreshS = 0.040;

double monotonic() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  // what Python's time.monotonic() reads
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double thread_time() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Python's round() on a float: to nearest, ties to even (the default rounding mode).
int64_t pyround(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

int64_t pymod(int64_t a, int64_t m) { return ((a % m) + m) % m; }

// collections.deque(maxlen=5) of clock offsets and statistics.median_low of it.
struct Clock {
    double v[kClockWindow];
    size_t n = 0;
    void clear() { n = 0; }
    void append(double x) {
        if (n == kClockWindow) {
            std::memmove(v, v + 1, (kClockWindow - 1) * sizeof(double));
            n--;
        }
        v[n++] = x;
    }
    double median_low() const {
        double s[kClockWindow];
        std::copy(v, v + n, s);
        std::sort(s, s + n);
        return s[(n - 1) / 2];
    }
};

struct Pairing {
    std::atomic<int> refs{1};  // its owner + the Capture it is set on
    std::mutex lock;  // the far ring and clocks (feed_far, from the speaker's thread)
    std::condition_variable far_fed;  // (with `lock`) feed_far wrote
    double last_feed = -1e9;  // monotonic() of the last feed_far
    int64_t far_waits = 0;  // blocks that waited for their reference
    std::mutex run;   // the module while it processes (set_module swaps it)
    std::vector<int16_t> ring = std::vector<int16_t>(kFarRing);
    int64_t far_count = 0, near_count = 0;
    Clock far_clock, near_clock;
    bool has_lag = false;
    int64_t lag = 0;
    // The read path in C (a Capture sets it): the first lag follows the clocks until both
    // have RESYNC_AFTER times, instead of keeping the first block's (see docs/media.md).
    bool settle = false, settled = false;
    bool resync = false;
    int16_t partial[kBlock];
    int partial_n = 0;
    bool has_fill = false;
    int64_t fill_end = 0, fill_length = 0;
    bool trim_fills = false;
    void* module = nullptr;
    std::atomic<bool> echo_cancellation{false};
    bool auto_gain = false;
    int64_t frames = 0, far_frames = 0, far_missing = 0, realignments = 0;
    int64_t gaps_filled = 0, gaps_trimmed = 0;
    float speech_probability = 0, gain_db = 0;
    double cpu_seconds = 0;
    std::vector<int16_t> pending, far_blocks;
    // CaptureProcessor.tap (diagnostics): the (near, far) pairs kept until Python takes them.
    bool tapping = false;
    std::vector<int16_t> tap_near, tap_far;
    static constexpr size_t kTapMax = size_t{kRate} * 120;  // 2 minutes, then the oldest go

    void write(const int16_t* s, int64_t n) {  // (lock held)
        if (n > kFarRing) {
            s += n - kFarRing;
            n = kFarRing;
        }
        int64_t at = far_count % kFarRing;
        int64_t first = std::min(n, kFarRing - at);
        std::memcpy(&ring[at], s, first * sizeof(int16_t));
        std::memcpy(&ring[0], s + first, (n - first) * sizeof(int16_t));
        far_count += n;
        far_frames = far_count / kBlock;
    }

    void write_zeros(int64_t n) {
        std::vector<int16_t> z(n, 0);
        write(z.data(), n);
    }

    int64_t played_gap(double play_time) {
        if (std::isnan(play_time) || !far_clock.n) return 0;
        double due = far_clock.median_low() + static_cast<double>(far_count) / kRate;
        int64_t gap = pyround((play_time - due) * kRate);
        return (kBlock / 10 <= gap && gap <= kMaxGap) ? gap : 0;
    }

    int64_t overfilled(double play_time) {
        if (!trim_fills || std::isnan(play_time) || !far_clock.n || !has_fill) return 0;
        if (far_count - fill_end > kRefine) return 0;
        double due = far_clock.median_low() + static_cast<double>(far_count) / kRate;
        int64_t early = pyround((due - play_time) * kRate);
        return (kBlock / 10 <= early && early <= fill_length) ? early : 0;
    }

    void trim(int64_t excess) {
        for (int64_t k = fill_end; k < far_count; k++)
            ring[pymod(k - excess, kFarRing)] = ring[k % kFarRing];
        far_count -= excess;
        far_frames = far_count / kBlock;
        fill_end -= excess;
        fill_length -= excess;
        far_clock.clear();
        gaps_trimmed++;
    }

    void feed_far(const int16_t* s, int64_t n, double play_time, bool underflow) {
        if (!echo_cancellation) return;
        std::lock_guard<std::mutex> g(lock);
        if (underflow) {
            int64_t gap = played_gap(play_time), excess = 0;
            if (gap) {
                write_zeros(gap);
                gaps_filled++;
                has_fill = true;
                fill_end = far_count;
                fill_length = gap;
            } else if ((excess = overfilled(play_time))) {
                trim(excess);
            } else {
                far_clock.clear();
                resync = true;
            }
        }
        if (!std::isnan(play_time))
            far_clock.append(play_time - static_cast<double>(far_count) / kRate);
        write(s, n);
        last_feed = monotonic();
        far_fed.notify_all();
    }

    // Before a captured block (its first sample at `capture_time`, `n` samples) is paired:
    // wait (at most kFarWaitS) until the speaker has fed what it played then, as far as
    // the far clock says, while the speaker is feeding. In Python the capture callback
    // waited for the GIL first, which the speaker's callback (the far feed) often held;
    // in C the block came first, and its reference was not there yet: bench/aec.py's
    // calls had 2-10x the blocks paired with (partly) no reference (docs/media.md).
    void wait_for_far(double capture_time, int n) {
        if (std::isnan(capture_time) || !echo_cancellation) return;
        std::unique_lock<std::mutex> g(lock);
        double need = capture_time + static_cast<double>(n) / kRate + kLeadS;
        auto until = std::chrono::steady_clock::now() +
                     std::chrono::microseconds(static_cast<int64_t>(kFarWaitS * 1e6));
        bool waited = false;
        while (far_clock.n && monotonic() - last_feed < kFarFreshS &&
               far_clock.median_low() + static_cast<double>(far_count) / kRate < need) {
            waited = true;
            if (far_fed.wait_until(g, until) == std::cv_status::timeout) break;
        }
        far_waits += waited;
    }

    int64_t align() {  // (lock held)
        bool has_far = far_clock.n > 0;
        double far = has_far ? far_clock.median_low() : 0.0;
        bool fresh = std::min(far_clock.n, near_clock.n) >= kResyncAfter;
        bool now = resync && fresh;
        resync = resync && !fresh;
        int64_t measured = 0;
        if (has_far && near_clock.n)
            measured = pyround((near_clock.median_low() - far + kLeadS) * kRate);
        if (!has_lag || (settle && !settled)) {
            lag = measured;
            has_lag = true;
            settled = fresh;
        } else if (now ? std::llabs(measured - lag) > kBlock / 10
                       : static_cast<double>(std::llabs(measured - lag)) > kRealignS * kRate) {
            lag = measured;
            realignments++;
        }
        return lag;
    }

    void far_at(int64_t index, int16_t* out) {  // (lock held)
        int64_t lo = std::max({index, far_count - kFarRing, int64_t{0}});
        int64_t hi = std::min(index + kBlock, far_count);
        if (lo == index && hi == index + kBlock && index % kFarRing + kBlock <= kFarRing) {
            std::memcpy(out, &ring[index % kFarRing], kBlock * sizeof(int16_t));
            return;
        }
        std::memset(out, 0, kBlock * sizeof(int16_t));
        for (int64_t k = lo; k < hi; k++) out[k - index] = ring[k % kFarRing];
        if (hi - lo < kBlock) far_missing++;
    }

    // CaptureProcessor.process: `out` holds at least n + kBlock samples; returns how many.
    int process(const int16_t* near, int n, double capture_time, bool overflow, int16_t* out) {
        if (overflow) {
            std::lock_guard<std::mutex> g(lock);
            near_clock.clear();
            resync = true;
        }
        std::lock_guard<std::mutex> r(run);
        {
            std::lock_guard<std::mutex> g(lock);  // (Python appends it unlocked: one writer)
            if (!std::isnan(capture_time))
                near_clock.append(capture_time - static_cast<double>(near_count) / kRate);
        }
        int64_t first = near_count - partial_n;
        near_count += n;
        pending.assign(partial, partial + partial_n);
        pending.insert(pending.end(), near, near + n);
        int blocks = static_cast<int>(pending.size()) / kBlock;
        partial_n = static_cast<int>(pending.size()) - blocks * kBlock;
        std::memcpy(partial, pending.data() + blocks * kBlock, partial_n * sizeof(int16_t));
        if (!blocks) return 0;
        bool cancel = echo_cancellation;
        far_blocks.resize(static_cast<size_t>(blocks) * kBlock);
        if (cancel) {
            std::lock_guard<std::mutex> g(lock);
            int64_t l = align();
            for (int i = 0; i < blocks; i++)
                far_at(first + static_cast<int64_t>(i) * kBlock + l, &far_blocks[i * kBlock]);
        }
        if (tapping) {
            std::lock_guard<std::mutex> g(lock);
            if (!cancel) std::fill(far_blocks.begin(), far_blocks.end(), 0);
            tap_near.insert(tap_near.end(), pending.begin(), pending.begin() + blocks * kBlock);
            tap_far.insert(tap_far.end(), far_blocks.begin(), far_blocks.end());
            if (tap_near.size() > kTapMax) {
                size_t extra = tap_near.size() - kTapMax;
                tap_near.erase(tap_near.begin(), tap_near.begin() + extra);
                tap_far.erase(tap_far.begin(), tap_far.begin() + extra);
            }
        }
        double t0 = thread_time();
        aec3_process(module, pending.data(), cancel ? far_blocks.data() : nullptr, out, blocks);
        cpu_seconds += thread_time() - t0;
        frames += blocks;
        speech_probability = aec3_speech_probability(module);
        if (auto_gain) gain_db = aec3_gain_db(module);
        return blocks * kBlock;
    }

    // set_echo_cancellation's swap (reset) or the first module (not): returns the old one.
    void* set_module(void* m, bool ec, bool agc, bool reset) {
        std::lock_guard<std::mutex> r(run);
        std::lock_guard<std::mutex> g(lock);
        if (reset) {
            far_clock.clear();
            near_clock.clear();
            has_lag = false;
            settled = false;
            has_fill = false;
            resync = true;
        }
        void* old = module;
        module = m;
        echo_cancellation = ec;
        auto_gain = agc;
        return old;
    }
};

void release_pairing(Pairing* p) {
    if (p->refs.fetch_sub(1) == 1) {
        if (p->module) aec3_destroy(p->module);
        delete p;
    }
}

struct Capture;

// One stream's side (PulseStream's per-stream state) bound to a Capture.
struct Binding {
    Capture* cap;
    int generation;
    int blocksize;
    std::vector<int16_t> pending;
    double pending_at = 0.0;
    bool overflow = false;  // the next block comes after lost samples
    double latency = 0.0;  // the server's last capture latency
    int64_t overflows = 0;
    // libpulse's functions (pa_stream_peek, _drop, _get_latency), from the loaded library.
    int (*peek)(void*, const void**, size_t*) = nullptr;
    int (*drop)(void*) = nullptr;
    int (*get_latency)(void*, uint64_t*, int*) = nullptr;
};

struct Capture {
    std::mutex lock;  // a whole block (DeviceSource._capture_lock)
    std::mutex out_lock;  // the frame queue
    std::atomic<int> refs{1};  // the owner + each bound stream
    int efd;
    int generation = 0;
    bool fresh = false;
    bool has_switched_from = false, has_end_adc = false;
    double switched_from = 0, end_adc = 0;
    double switch_gap_ms = NAN;
    double last_block = 0;
    int64_t overflows = 0, voice_blocks = 0, dropped = 0;
    bool listening_loop = false;  // a loop takes frames (DeviceSource._main_loop is set)
    bool voice = false;  // counting voice blocks (DeviceSource.listening)
    float voice_probability;
    double voice_ms;  // a block this loud counts as voice without a processor
    std::vector<int16_t> early;
    bool has_early = false;
    Pairing* pairing = nullptr;
    bool wait_far = true;  // Pairing::wait_for_far before each block (cap_set_wait)
    bool settle = true;  // the pairing set on it settles its first lag (cap_set_settle)
    std::vector<int16_t> chunks;  // the Rechunker's samples
    std::vector<int16_t> processed;
    int16_t queue[kQueue][kFrame];
    int head = 0, count = 0;
    // A native send path (send_path.cpp, cap_set_send) takes the frames instead while set:
    // set and unset under `lock`, so never while a frame is on its way. send_n: samples it
    // takes at a time (kFrame, or kBlock for 10 ms packets: each processed block goes out
    // as it is made, not after the next one has made a 20 ms frame).
    int (*send)(void*, const int16_t*) = nullptr;
    void* send_ctx = nullptr;
    size_t send_n = kFrame;

    void release() {
        if (refs.fetch_sub(1) == 1) {
            if (pairing) release_pairing(pairing);
            close(efd);
            delete this;
        }
    }

    void enqueue(const int16_t* frame) {  // (a 20 ms frame for Python)
        {
            std::lock_guard<std::mutex> g(out_lock);
            if (count == kQueue) {
                head = (head + 1) % kQueue;
                count--;
                dropped++;
            }
            std::memcpy(queue[(head + count) % kQueue], frame, kFrame * sizeof(int16_t));
            count++;
        }
        uint64_t one = 1;
        ssize_t rc = ::write(efd, &one, sizeof one);
        (void)rc;  // (EAGAIN: the counter is full, a wake is pending anyway)
    }

    bool is_voice(const int16_t* s, int n) const {
        if (pairing) return pairing->speech_probability >= voice_probability;
        if (!n) return false;
        double sum = 0;
        for (int i = 0; i < n; i++) sum += static_cast<double>(s[i]) * s[i];
        double rms = std::sqrt(sum / n);  // levels.rms_dbfs against voice_ms, the threshold
        return rms > 0 && 20 * std::log10(rms / 32768.0) >= voice_ms;
    }

    void take(const int16_t* s, int n, double captured, bool repair) {  // DeviceSource._take
        if (pairing && wait_far) pairing->wait_for_far(captured, n);
        if (pairing) {
            processed.resize(n + kBlock);
            n = pairing->process(s, n, captured, repair, processed.data());
            s = processed.data();
        }
        if (voice && is_voice(s, n)) voice_blocks++;
        chunks.insert(chunks.end(), s, s + n);
    }

    // DeviceSource._callback for one block of a stream's timeline (lock held).
    void block(const int16_t* s, int n, double adc, bool overflow) {
        last_block = monotonic();
        bool was_fresh = fresh;
        if (was_fresh) {
            fresh = false;
            if (has_switched_from && adc != 0.0)
                switch_gap_ms = std::round(std::max(0.0, adc - switched_from) * 1000 * 10) / 10;
        }
        if (adc != 0.0) {
            end_adc = adc + static_cast<double>(n) / kRate;
            has_end_adc = true;
        }
        if (overflow) overflows++;
        bool repair = overflow || was_fresh;
        if (!listening_loop) {
            has_early = n < kFrame;
            if (has_early) early.assign(s, s + n);
            return;
        }
        if (has_early) {
            has_early = false;
            if (chunks.empty() && !(pairing && pairing->echo_cancellation))
                chunks.insert(chunks.end(), early.begin(), early.end());
        }
        take(s, n, adc, repair);
        size_t at = 0;
        // Sent from here (no queue, no wake-up) while C takes them; whatever it does not
        // (it gave up) is Python's, in 20 ms frames from the first sample not sent, so the
        // stream goes on without a gap (a 10 ms stretch may end mid-frame: the next frame
        // starts where it ended, and the timestamp C hands back is that sample's).
        while (send && chunks.size() - at >= send_n && send(send_ctx, chunks.data() + at))
            at += send_n;
        while (chunks.size() - at >= static_cast<size_t>(kFrame)) {
            enqueue(chunks.data() + at);
            at += kFrame;
        }
        chunks.erase(chunks.begin(), chunks.begin() + at);
        std::lock_guard<std::mutex> g(out_lock);  // for cap_counters, without `lock`
        double v[] = {last_block, double(overflows), switch_gap_ms, double(voice_blocks),
                      double(dropped)};
        std::memcpy(snapshot, v, sizeof v);
    }
    double snapshot[5] = {0, 0, NAN, 0, 0};
};

// PulseStream._take: a chunk captured from `captured` on, in blocks on one timeline.
void take_chunk(Binding* b, const int16_t* s, int n, double captured) {
    double expected = b->pending_at + static_cast<double>(b->pending.size()) / kRate;
    if (b->pending_at == 0.0 || std::fabs(captured - expected) > kCaptureJumpS) {
        if (b->pending_at != 0.0 && captured > expected) {
            b->overflow = true;
            b->overflows++;
        }
        b->pending_at = captured - static_cast<double>(b->pending.size()) / kRate;
    }
    b->pending.insert(b->pending.end(), s, s + n);
    Capture* c = b->cap;
    size_t at = 0, block = b->blocksize;
    std::lock_guard<std::mutex> g(c->lock);
    while (b->pending.size() - at >= block) {
        if (b->generation == c->generation)
            c->block(b->pending.data() + at, static_cast<int>(block),
                     b->pending_at + static_cast<double>(at) / kRate, b->overflow);
        b->overflow = false;
        at += block;
    }
    b->pending.erase(b->pending.begin(), b->pending.begin() + at);
    b->pending_at += static_cast<double>(at) / kRate;
}

}  // namespace

extern "C" {

void* cp_new() { return new Pairing(); }
void cp_free(void* p) { release_pairing(static_cast<Pairing*>(p)); }
// One more owner (speaker_path.cpp's Speaker feeds it); cp_free gives it back.
void cp_retain(void* p) { static_cast<Pairing*>(p)->refs++; }
// The module (from aec3_create; the Pairing owns it from now on, and destroys the old).
void cp_set_module(void* p, void* module, int echo_cancellation, int auto_gain, int reset) {
    void* old = static_cast<Pairing*>(p)->set_module(module, echo_cancellation != 0,
                                                      auto_gain != 0, reset != 0);
    if (old) aec3_destroy(old);
}
void cp_set_trim(void* p, int on) {
    auto* pr = static_cast<Pairing*>(p);
    std::lock_guard<std::mutex> g(pr->lock);
    pr->trim_fills = on != 0;
}
// play_time: NaN for none.
void cp_feed_far(void* p, const int16_t* s, int n, double play_time, int underflow) {
    static_cast<Pairing*>(p)->feed_far(s, n, play_time, underflow != 0);
}
int cp_process(void* p, const int16_t* near, int n, double capture_time, int overflow,
               int16_t* out) {
    return static_cast<Pairing*>(p)->process(near, n, capture_time, overflow != 0, out);
}
// frames, far_frames, far_missing, realignments, pairing_ms, speech_probability, gain_db,
// cpu_seconds, gaps_filled, gaps_trimmed, echo_cancellation
void cp_stats(void* p, double* out) {
    auto* pr = static_cast<Pairing*>(p);
    std::lock_guard<std::mutex> g(pr->lock);
    double v[] = {double(pr->frames), double(pr->far_frames), double(pr->far_missing),
                  double(pr->realignments), double(pr->has_lag ? pr->lag : 0) * 1000 / kRate,
                  pr->speech_probability, pr->gain_db, pr->cpu_seconds,
                  double(pr->gaps_filled), double(pr->gaps_trimmed),
                  pr->echo_cancellation ? 1.0 : 0.0};
    std::memcpy(out, v, sizeof v);
}

// Keep each (near, far) pair from now on (on) or no more (off).
void cp_tap(void* p, int on) {
    auto* pr = static_cast<Pairing*>(p);
    std::lock_guard<std::mutex> g(pr->lock);
    pr->tapping = on != 0;
}
// The kept pairs' samples (each side): call with null buffers for the count, then take them.
int64_t cp_tap_take(void* p, int16_t* near, int16_t* far, int64_t size) {
    auto* pr = static_cast<Pairing*>(p);
    std::lock_guard<std::mutex> g(pr->lock);
    int64_t n = static_cast<int64_t>(pr->tap_near.size());
    if (!near || !far) return n;
    n = std::min(n, size);
    std::memcpy(near, pr->tap_near.data(), n * sizeof(int16_t));
    std::memcpy(far, pr->tap_far.data(), n * sizeof(int16_t));
    pr->tap_near.erase(pr->tap_near.begin(), pr->tap_near.begin() + n);
    pr->tap_far.erase(pr->tap_far.begin(), pr->tap_far.begin() + n);
    return n;
}

void* cap_new(float voice_probability, double voice_dbfs) {
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) return nullptr;
    auto* c = new Capture();
    c->efd = efd;
    c->voice_probability = voice_probability;
    c->voice_ms = voice_dbfs;
    return c;
}
int cap_fd(void* c) { return static_cast<Capture*>(c)->efd; }
void cap_free(void* c) { static_cast<Capture*>(c)->release(); }
void cap_set_pairing(void* c, void* pairing) {
    auto* cap = static_cast<Capture*>(c);
    auto* p = static_cast<Pairing*>(pairing);
    if (p) {
        p->refs++;
        std::lock_guard<std::mutex> g(p->lock);
        p->settle = cap->settle;
    }
    Pairing* old;
    {
        std::lock_guard<std::mutex> g(cap->lock);
        old = cap->pairing;
        cap->pairing = p;
    }
    if (old) release_pairing(old);
}
void cap_set_wait(void* c, int on) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->wait_far = on != 0;
}
void cap_set_settle(void* c, int on) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->settle = on != 0;
}
int64_t cp_far_waits(void* p) {
    auto* pr = static_cast<Pairing*>(p);
    std::lock_guard<std::mutex> g(pr->lock);
    return pr->far_waits;
}
void cap_listen(void* c) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->listening_loop = true;
}
void cap_set_voice(void* c, int on) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->voice = on != 0;
}
// DeviceSource.switch: the next generation's first block re-pairs; returns it.
int cap_switch(void* c) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->generation++;
    cap->fresh = true;
    cap->has_early = false;
    cap->has_switched_from = cap->has_end_adc;
    cap->switched_from = cap->end_adc;
    return cap->generation;
}
void cap_stop(void* c) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    cap->generation = -1;
}
// The send path's hook (send_path.cpp's sp_frame and its object, `samples` at a time: kFrame
// or kBlock), or NULL to unset. Set only when no frame waits for Python (the order of frames
// is kept): 1 done, 0 refused.
int cap_set_send(void* c, void* fn, void* ctx, int samples) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->lock);
    if (fn) {
        std::lock_guard<std::mutex> q(cap->out_lock);
        if (cap->count) return 0;
    }
    cap->send = reinterpret_cast<int (*)(void*, const int16_t*)>(fn);
    cap->send_ctx = fn ? ctx : nullptr;
    cap->send_n = samples == kBlock ? kBlock : kFrame;
    return 1;
}
// The next frame into `out` (kFrame samples): 1, or 0 when none is waiting.
int cap_pop(void* c, int16_t* out) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->out_lock);
    if (!cap->count) return 0;
    std::memcpy(out, cap->queue[cap->head], kFrame * sizeof(int16_t));
    cap->head = (cap->head + 1) % kQueue;
    cap->count--;
    return 1;
}
// last_block, overflows, switch_gap_ms (NaN: none), voice_blocks, dropped
// Up to `max` frames into `out` (consecutive) and the counters (cap_counters) into
// `counters`, in one call: the event loop's whole read per wake-up. Returns the frames.
int cap_take(void* c, int16_t* out, int max, double* counters) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->out_lock);
    int n = 0;
    for (; n < max && cap->count; n++, out += kFrame) {
        std::memcpy(out, cap->queue[cap->head], kFrame * sizeof(int16_t));
        cap->head = (cap->head + 1) % kQueue;
        cap->count--;
    }
    std::memcpy(counters, cap->snapshot, sizeof cap->snapshot);
    return n;
}
// (As of the last block listened to: read under the queue's lock, never behind a block's
// processing, since the event loop reads it with the GIL held.)
void cap_counters(void* c, double* out) {
    auto* cap = static_cast<Capture*>(c);
    std::lock_guard<std::mutex> g(cap->out_lock);
    std::memcpy(out, cap->snapshot, sizeof cap->snapshot);
}

// latency: the capture latency until the server reports one (PulseStream: the one asked).
void* cap_bind(void* c, int generation, int blocksize, double latency, void* peek, void* drop,
               void* get_latency) {
    auto* cap = static_cast<Capture*>(c);
    cap->refs++;
    auto* b = new Binding{cap, generation, blocksize};
    b->latency = latency;
    b->peek = reinterpret_cast<int (*)(void*, const void**, size_t*)>(peek);
    b->drop = reinterpret_cast<int (*)(void*)>(drop);
    b->get_latency = reinterpret_cast<int (*)(void*, uint64_t*, int*)>(get_latency);
    return b;
}
// After the stream's callback can no longer run (disconnected).
void cap_unbind(void* b) {
    auto* binding = static_cast<Binding*>(b);
    binding->cap->release();
    delete binding;
}
int64_t cap_stream_overflows(void* b) { return static_cast<Binding*>(b)->overflows; }
// Samples lost before the next chunk (a hole in the stream; tests).
void cap_hole(void* b) {
    auto* binding = static_cast<Binding*>(b);
    binding->overflow = true;
    binding->overflows++;
}
// A chunk captured from `captured` on (tests; the read callback's own path).
void cap_chunk(void* b, const int16_t* s, int n, double captured) {
    take_chunk(static_cast<Binding*>(b), s, n, captured);
}

// libpulse's read callback (pa_stream_request_cb_t), on the stream's mainloop thread with
// its lock held: PulseStream._read without Python.
void cap_pulse_read(void* stream, size_t, void* userdata) {
    auto* b = static_cast<Binding*>(userdata);
    const void* data;
    size_t size;
    while (b->peek(stream, &data, &size) == 0 && size) {
        if (!data) {  // a hole: samples lost
            b->overflow = true;
            b->overflows++;
        } else {
            uint64_t usec;
            int negative;
            if (b->get_latency(stream, &usec, &negative) == 0)
                b->latency = negative ? -static_cast<double>(usec) / 1e6
                                      : static_cast<double>(usec) / 1e6;
            take_chunk(b, static_cast<const int16_t*>(data), static_cast<int>(size / 2),
                       monotonic() - b->latency);
        }
        b->drop(stream);
    }
}

}  // extern "C"
