// The speaker's per-block path in C, compiled into _aec3_shim.so with aec3_shim.cpp and
// capture_path.cpp (aec3_build.py): libpulse's write callback (stream request), the
// play-time timeline, the playout buffer with its adaptive target, drift correction and
// accelerate, and the echo canceller's far-end feed, so no speaker callback waits for the
// interpreter. Python pushes one decoded frame per 20 ms (the event loop) and reads
// counters when it wants them (docs/media.md, "The speaker path in C").
//
// Three objects:
// * Playout (po_*): hello_tui/media/playout.py's PlayoutBuffer (with DriftController and
//   ArrivalJitter), line for line, in the same double arithmetic in the same order, so
//   tests/media/test_speaker_path.py can require the same samples and counters out for
//   the same pushes and pulls (with times) in.
// * Speaker (spk_*): DeviceSink._callback per block (the generation a stream plays for,
//   the card's underruns, a switch's gap), its Playout, and the Pairing of
//   capture_path.cpp fed directly (cp_feed_far) with each block's play time.
// * Binding: one pulse playback stream's side (PulseStream._write/_heard_at/_play_time:
//   the blocks' timeline moved only by the server's own timing report).
//
// Locks: a Speaker's `lock` is held for one block (DeviceSink._play_lock); its Playout has
// a lock of its own (PlayoutBuffer._lock), taken by the loop's push for a copy.
// Lifetime: each bound stream holds a count on its Speaker, as capture_path.cpp's Capture.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include <sys/time.h>
#include <time.h>

extern "C" {
void cp_feed_far(void* p, const int16_t* s, int n, double play_time, int underflow);
void cp_retain(void* p);
void cp_free(void* p);
}

namespace {

constexpr int kRate = 48000;
// pulse_streams' constants
constexpr double kGapS = 0.012;
constexpr double kToldAfterS = 0.100;
constexpr double kRefineS = 0.300;

double real_monotonic() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double real_wallclock() {  // time.time()
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The clocks (a test drives both paths on one fake clock: spk_test_clocks).
std::atomic<double (*)()> g_monotonic{real_monotonic}, g_wallclock{real_wallclock};
double monotonic() { return g_monotonic.load(std::memory_order_relaxed)(); }
double wallclock() { return g_wallclock.load(std::memory_order_relaxed)(); }

int64_t pyround(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

// PlayoutConfig, in the order playout_native.CONFIG_FIELDS gives it.
struct Config {
    double target_ms, tolerance_ms, max_ms, smoothing_s, settle_s, max_ratio;
    double adaptive, min_target_ms, max_target_ms, margin_ms, jitter_k, jitter_window_s;
    double underrun_boost_ms, boost_half_life_s, fast_excess_ms, quiet_peak;
    double accelerate_ms, accelerate_min_ms, accelerate_excess_ms, underrun_refill_ms;
};
constexpr int kConfigFields = sizeof(Config) / sizeof(double);

int64_t ms_to_samples(double ms) { return pyround(ms * kRate / 1000); }

struct Drift {  // DriftController
    const Config* cfg;
    int64_t target, tolerance;
    bool has_avg = false;
    double avg = 0.0, carry = 0.0;

    double excess() const {
        return std::max(0.0, (has_avg ? avg : 0.0) - static_cast<double>(target) -
                                 static_cast<double>(tolerance));
    }
    void shift(int64_t samples) {
        if (has_avg) avg -= static_cast<double>(samples);
    }
    void reset(int64_t depth) {
        avg = static_cast<double>(depth);
        has_avg = true;
        carry = 0.0;
    }
    int64_t update(int64_t depth, int64_t n) {
        if (!has_avg) {
            avg = static_cast<double>(depth);
            has_avg = true;
        } else {
            double alpha = std::min(1.0, static_cast<double>(n) / (kRate * cfg->smoothing_s));
            avg += alpha * (static_cast<double>(depth) - avg);
        }
        double error = avg - static_cast<double>(target);
        double want = 0.0;
        double tol = static_cast<double>(tolerance);
        if (std::fabs(error) > tol) {
            double excess = error - std::copysign(tol, error);
            double limit = cfg->max_ratio * static_cast<double>(n);
            want = std::max(-limit, std::min(limit, excess * static_cast<double>(n) /
                                                        (kRate * cfg->settle_s)));
        }
        carry += want;
        auto adjust = static_cast<int64_t>(carry);  // toward zero, as int()
        carry -= static_cast<double>(adjust);
        return adjust;
    }
};

struct Jitter {  // ArrivalJitter
    double window_s, restart_s = 0.2;
    int64_t sent = 0;
    std::deque<std::pair<double, double>> delays, mins;
    std::vector<double> sorted;

    void add(double now, int64_t n) {
        double delay = now - static_cast<double>(sent) / kRate;
        sent += n;
        if (!mins.empty() && delay - mins.front().second > restart_s) {
            delays.clear();
            mins.clear();
        }
        delays.emplace_back(now, delay);
        while (!mins.empty() && mins.back().second >= delay) mins.pop_back();
        mins.emplace_back(now, delay);
        double cutoff = now - window_s;
        while (delays.front().first < cutoff) delays.pop_front();
        while (mins.front().first < cutoff) mins.pop_front();
    }
    double spread_s(double percentile = 95.0) {
        if (delays.empty()) return 0.0;
        sorted.clear();
        for (auto& d : delays) sorted.push_back(d.second);
        std::sort(sorted.begin(), sorted.end());
        double pos = static_cast<double>(sorted.size() - 1) * percentile / 100;
        auto lo = static_cast<size_t>(pos);
        size_t hi = std::min(lo + 1, sorted.size() - 1);
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo)) -
               sorted[0];
    }
};

constexpr int kFade = kRate * 25 / 10000;  // playout.SPLICE_FADE

struct Playout {  // PlayoutBuffer
    std::mutex lock;
    Config cfg;
    Drift drift;
    Jitter jitter;
    int64_t target, max;
    std::vector<int16_t> buf;
    int64_t start = 0, end = 0;
    bool priming = true;
    int64_t underruns = 0, overflow_drops = 0, samples_removed = 0, samples_inserted = 0;
    int64_t accelerated = 0;
    std::vector<int16_t> last_out;
    int64_t last_push = 960, last_pull = 480;
    double boost = 0.0, boost_at = 0.0, last_now = 0.0;
    int64_t pushes = 0;
    double jitter_ms = 0.0;
    int64_t pushed = 0;  // samples given to push (the m2e trace's count)
    std::vector<double> xs;  // scratch: _accelerate's float copy

    explicit Playout(const double* c) {
        std::memcpy(&cfg, c, sizeof cfg);
        drift.cfg = &cfg;
        drift.target = ms_to_samples(cfg.target_ms);
        drift.tolerance = ms_to_samples(cfg.tolerance_ms);
        jitter.window_s = cfg.jitter_window_s;
        target = ms_to_samples(cfg.target_ms);
        max = ms_to_samples(cfg.max_ms);
        buf.assign(max * 2 + kRate / 10, 0);
        if (adaptive()) set_target(target);
    }
    bool adaptive() const { return cfg.adaptive != 0.0; }
    int64_t depth() const { return end - start; }

    void set_target(int64_t t) {
        target = t;
        int64_t tolerance = std::min(ms_to_samples(cfg.tolerance_ms), t / 8);
        drift.target = t;
        drift.tolerance = tolerance;
    }

    void retarget(double now) {
        if (boost != 0.0) {
            boost *= std::pow(0.5, (now - boost_at) / cfg.boost_half_life_s);
            boost_at = now;
            if (boost < 1) boost = 0.0;
        }
        if (jitter.delays.size() < 25 && boost == 0.0) return;
        jitter_ms = jitter.spread_s() * 1000;
        double sawtooth = static_cast<double>(last_push + last_pull) / 2;
        double want = sawtooth + static_cast<double>(ms_to_samples(cfg.margin_ms +
                                                                   cfg.jitter_k * jitter_ms));
        want += boost;
        auto lo = static_cast<double>(ms_to_samples(cfg.min_target_ms));
        auto hi = static_cast<double>(ms_to_samples(cfg.max_target_ms));
        set_target(pyround(std::max(lo, std::min(hi, want))));
    }

    int64_t prime_level() const {
        if (!adaptive()) return target;
        int64_t level = target + std::max<int64_t>(0, last_push - last_pull) / 2;
        if (underruns && cfg.underrun_refill_ms > 0)
            return std::min(level, ms_to_samples(cfg.underrun_refill_ms));
        return level;
    }

    int64_t skip_quiet(int64_t d, int64_t n) {
        if (drift.excess() < static_cast<double>(ms_to_samples(cfg.fast_excess_ms)) || d < 3 * n)
            return d;
        int peak = 0;
        for (int64_t i = start; i < start + 2 * n; i++) peak = std::max(peak, std::abs(int{buf[i]}));
        if (peak >= static_cast<int>(cfg.quiet_peak)) return d;
        start += n;
        samples_removed += n;
        drift.shift(n);
        return d - n;
    }

    // _accelerate: true (and `out` filled) when a splice was made. Every product below is
    // of integers (int16 samples) whose sums stay under 2^53, so exact in any order: the
    // score equals numpy's bit for bit, and so does the cut.
    bool accelerate(int64_t d, int64_t n, int16_t* out) {
        const int w = kFade;
        if (n < w || drift.excess() < static_cast<double>(ms_to_samples(cfg.accelerate_excess_ms)))
            return false;
        int64_t lo = ms_to_samples(cfg.accelerate_min_ms);
        int64_t room = d - n - target - drift.tolerance;
        int64_t hi = std::min(ms_to_samples(cfg.accelerate_ms), room);
        if (hi < lo) return false;
        xs.resize(n + hi);
        for (int64_t i = 0; i < n + hi; i++) xs[i] = buf[start + i];
        const double* head = xs.data();
        double hh = 0.0;
        for (int i = 0; i < w; i++) hh += head[i] * head[i];
        int64_t best = 0;
        double best_score = 0.0;
        for (int64_t j = 0; j <= hi - lo; j++) {
            const double* win = xs.data() + lo + j;
            double ww = 0.0, wh = 0.0;
            for (int i = 0; i < w; i++) {
                ww += win[i] * win[i];
                wh += win[i] * head[i];
            }
            double score = wh / std::sqrt(ww * hh + 1.0);
            if (j == 0 || score > best_score) {
                best_score = score;
                best = j;
            }
        }
        int64_t c = lo + best;
        for (int i = 0; i < w; i++) {
            double ramp = static_cast<double>(i + 1) / (w + 1);
            double a = head[i] * (1 - ramp);
            double b = xs[c + i] * ramp;
            out[i] = static_cast<int16_t>(std::nearbyint(a + b));
        }
        std::memcpy(out + w, &buf[start + c + w], (n - w) * sizeof(int16_t));
        start += n + c;
        samples_removed += c;
        accelerated += c;
        return true;
    }

    void grow() {
        int64_t step = ms_to_samples(cfg.underrun_boost_ms);
        boost += static_cast<double>(step);
        boost_at = last_now;
        set_target(std::min(ms_to_samples(cfg.max_target_ms), target + step));
    }

    void push(const int16_t* s, int64_t n, double now) {
        std::lock_guard<std::mutex> g(lock);
        pushed += n;
        if (adaptive()) {
            if (std::isnan(now)) now = monotonic();
            jitter.add(now, n);
            last_now = now;
            last_push = n;
            pushes++;
            if (pushes % 5 == 0 || boost != 0.0) retarget(now);
        }
        auto len = static_cast<int64_t>(buf.size());
        if (end + n > len) {
            int64_t d = depth();
            std::memmove(buf.data(), buf.data() + start, d * sizeof(int16_t));
            start = 0;
            end = d;
        }
        if (n > len - end) {  // larger than the whole buffer: keep the newest
            s += n - (len - end);
            n = len - end;
        }
        std::memcpy(buf.data() + end, s, n * sizeof(int16_t));
        end += n;
        if (depth() > max) {
            int64_t excess = depth() - target;
            start += excess;
            overflow_drops += excess;
            drift.reset(depth());
        }
    }

    // np.linspace(0, take - 1, n) then np.interp over 0..take-1, then astype(int16).
    static void stretch(const int16_t* block, int64_t take, int16_t* out, int64_t n) {
        double step = n > 1 ? static_cast<double>(take - 1) / static_cast<double>(n - 1) : 0.0;
        int64_t j = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = (i == n - 1 && n > 1) ? static_cast<double>(take - 1)
                                              : static_cast<double>(i) * step + 0.0;
            j = static_cast<int64_t>(x);  // grid 0, 1, ...: x's cell (x >= 0)
            double r;
            if (j >= take - 1) {
                r = block[take - 1];
            } else if (static_cast<double>(j) == x) {
                r = block[j];
            } else {
                double slope = (static_cast<double>(block[j + 1]) - block[j]) / 1.0;
                r = slope * (x - static_cast<double>(j)) + block[j];
            }
            out[i] = static_cast<int16_t>(r);  // astype: toward zero
        }
    }

    void keep(const int16_t* out, int64_t n) { last_out.assign(out, out + n); }

    void pull(int64_t n, int16_t* out) {
        std::lock_guard<std::mutex> g(lock);
        last_pull = n;
        int64_t d = depth();
        if (priming) {
            if (d < prime_level()) {
                last_out.clear();
                std::memset(out, 0, n * sizeof(int16_t));
                return;
            }
            priming = false;
            drift.reset(d);
        }
        if (adaptive()) {
            d = skip_quiet(d, n);
            if (cfg.accelerate_ms > 0 && accelerate(d, n, out)) {
                drift.update(d, n);
                drift.shift(d - n - depth());
                keep(out, n);
                return;
            }
        }
        int64_t adjust = drift.update(d, n);
        int64_t take = n + adjust;
        if (take > d) {  // starving: what is left, then silence, and refill
            std::memset(out, 0, n * sizeof(int16_t));
            std::memcpy(out, buf.data() + start, std::min(d, n) * sizeof(int16_t));
            start = end;
            underruns++;
            priming = true;
            if (adaptive()) grow();
        } else {
            const int16_t* block = buf.data() + start;
            start += take;
            if (adjust) {
                stretch(block, take, out, n);
                if (adjust > 0)
                    samples_removed += adjust;
                else
                    samples_inserted -= adjust;
            } else {
                std::memcpy(out, block, n * sizeof(int16_t));
            }
        }
        keep(out, n);
    }

    double output_dbfs() {  // levels.rms_dbfs of the last block
        if (last_out.empty()) return -127.0;
        double sum = 0.0;
        for (int16_t v : last_out) sum += static_cast<double>(v) * v;
        double rms = std::sqrt(sum / static_cast<double>(last_out.size()));
        if (rms <= 0) return -127.0;
        return std::max(-127.0, 20 * std::log10(rms / 32768.0));
    }
};

constexpr int kUnderflowTimes = 64;  // DeviceSink.underflow_times' maxlen
constexpr int kTrace = 1024;  // the m2e trace's records kept until Python takes them
constexpr int kTraceFields = 9;

struct Speaker;

struct Binding {  // one pulse playback stream (PulseStream's timeline state)
    Speaker* spk;
    int generation;
    int blocksize;
    bool raw_timing = true;
    double latency;  // the server's latency now, once reported (the one asked before)
    bool underflow = false;  // the server's underflow message, not yet passed on
    int64_t underflows = 0;
    bool has_next_play = false;
    double next_play = 0.0;
    double gap_seen = -INFINITY;
    int64_t written = 0;
    bool has_report = false;
    double report_at = 0.0;
    bool refine = false;
    std::vector<int16_t> out;
    int (*write)(void*, const void*, size_t, void*, int64_t, int) = nullptr;
    const void* (*timing)(void*) = nullptr;
    int (*get_latency)(void*, uint64_t*, int*) = nullptr;

    double now_latency(void* stream) {
        uint64_t usec;
        int negative;
        if (get_latency(stream, &usec, &negative) == 0)
            latency = negative ? -static_cast<double>(usec) / 1e6 : static_cast<double>(usec) / 1e6;
        return latency;
    }

    // PulseStream._heard_at, from pa_timing_info's leading fields.
    double heard_at(void* stream, double now) {
        struct Timing {
            struct timeval timestamp;
            int synchronized_clocks;
            uint64_t sink_usec, source_usec, transport_usec;
            int playing, write_index_corrupt;
            int64_t write_index;
            int read_index_corrupt;
            int64_t read_index;
        };
        auto* i = raw_timing ? static_cast<const Timing*>(timing(stream)) : nullptr;
        has_report = false;
        if (!i || i->read_index_corrupt) return now + now_latency(stream);
        double sink = static_cast<double>(i->sink_usec) / 1e6;
        double soonest = now + sink;
        double stamp = static_cast<double>(i->timestamp.tv_sec) +
                       static_cast<double>(i->timestamp.tv_usec) / 1e6 - (wallclock() - now);
        bool stale = stamp < gap_seen || (!i->playing && written > i->read_index);
        if (stale && has_next_play) return std::max(next_play, soonest);
        if (!i->playing) return soonest;
        has_report = true;
        report_at = stamp;
        return std::max(soonest, stamp + sink + static_cast<double>(written - i->read_index) /
                                                    (2 * kRate));
    }

    // PulseStream._play_time: (when the next block is heard, whether the speaker ran dry).
    std::pair<double, bool> play_time(double measured, double now) {
        bool told = underflow;
        underflow = false;
        if (!has_next_play) return {measured, told};
        double expected = next_play;
        double late = measured - expected;
        if (late > kGapS || (told && late > 0.001 && now - gap_seen > kToldAfterS)) {
            gap_seen = now;
            refine = true;
            return {measured, true};
        }
        if (refine && now - gap_seen > kRefineS) refine = false;
        if (refine && (has_report ? report_at : 0.0) > gap_seen) {
            refine = false;
            if (std::fabs(late) > 0.001) return {measured, true};
        }
        if (late < -2 * kGapS) return {measured, false};
        return {expected, false};
    }
};

struct Speaker {  // DeviceSink's per-block state
    std::atomic<int> refs{1};  // the owner + each bound stream
    std::mutex lock;  // one block (DeviceSink._play_lock)
    Playout playout;
    void* pairing = nullptr;  // capture_path.cpp's Pairing (a count held), or none
    int generation = 0;
    bool fresh = false;
    bool has_switched_from = false, has_end_dac = false;
    double switched_from = 0.0, end_dac = 0.0;
    double switch_gap_ms = NAN;
    double last_block = 0.0;
    int64_t card_underflows = 0;
    double underflow_times[kUnderflowTimes];
    bool tracing = false;
    std::vector<double> trace;  // kTraceFields per block, oldest first

    explicit Speaker(const double* cfg) : playout(cfg) {}

    void release() {
        if (refs.fetch_sub(1) == 1) {
            if (pairing) cp_free(pairing);
            delete this;
        }
    }

    // DeviceSink._callback for one block of `b`'s stream (or silence for an old one).
    void block(Binding* b, int16_t* out, int n, double dac, double now, bool underflow) {
        std::lock_guard<std::mutex> g(lock);
        if (b->generation != generation) {
            std::memset(out, 0, n * sizeof(int16_t));
            return;
        }
        last_block = monotonic();
        if (underflow) {
            underflow_times[card_underflows % kUnderflowTimes] = last_block;
            card_underflows++;
        }
        double played = dac;
        bool was_fresh = fresh;
        if (was_fresh) {
            fresh = false;
            if (has_switched_from)
                switch_gap_ms = std::round(std::max(0.0, played - switched_from) * 1000 * 10) / 10;
        }
        end_dac = played + static_cast<double>(n) / kRate;
        has_end_dac = true;
        double depth = 0, target = 0, priming = 0, pushed = 0;
        if (tracing) {
            std::lock_guard<std::mutex> p(playout.lock);
            depth = static_cast<double>(playout.depth());
            target = static_cast<double>(playout.target);
            priming = playout.priming;
            pushed = static_cast<double>(playout.pushed);
        }
        playout.pull(n, out);
        if (pairing) cp_feed_far(pairing, out, n, played, underflow || was_fresh);
        if (tracing && trace.size() < size_t{kTrace} * kTraceFields) {
            double card = dac - now;
            double rec[kTraceFields] = {last_block, double(n), priming, double(underflow), card,
                                        double(b->underflows), depth, target, pushed};
            trace.insert(trace.end(), rec, rec + kTraceFields);
        }
    }
};

// PulseStream._write: the server wants `nbytes`: whole blocks, one write.
void write_request(Binding* b, void* stream, size_t nbytes) {
    size_t size = static_cast<size_t>(b->blocksize) * 2;
    int blocks = static_cast<int>(nbytes / size);
    if (!blocks) return;
    double now = monotonic();
    size_t total = static_cast<size_t>(blocks) * b->blocksize;
    if (b->out.size() < total) b->out.resize(total);
    auto [first, flag] = b->play_time(b->heard_at(stream, now), now);
    double step = static_cast<double>(b->blocksize) / kRate;
    for (int i = 0; i < blocks; i++)
        b->spk->block(b, b->out.data() + static_cast<size_t>(i) * b->blocksize, b->blocksize,
                      first + i * step, now, i == 0 && flag);
    b->write(stream, b->out.data(), static_cast<size_t>(blocks) * size, nullptr, 0, 0);
    b->written += static_cast<int64_t>(blocks) * static_cast<int64_t>(size);
    b->next_play = first + blocks * step;
    b->has_next_play = true;
}

}  // namespace

extern "C" {

int po_config_fields() { return kConfigFields; }

// A playout buffer on its own (tests: pinned to PlayoutBuffer); `cfg`: kConfigFields values.
void* po_new(const double* cfg) { return new Playout(cfg); }
void po_free(void* p) { delete static_cast<Playout*>(p); }
// now: NaN for time.monotonic()
void po_push(void* p, const int16_t* s, int n, double now) {
    static_cast<Playout*>(p)->push(s, n, now);
}
void po_pull(void* p, int n, int16_t* out) { static_cast<Playout*>(p)->pull(n, out); }
// depth, target, priming, underruns, overflow_drops, samples_removed, samples_inserted,
// accelerated, jitter_ms, output_dbfs, average_depth, tolerance, pushed
void po_stats(void* p, double* out) {
    auto* po = static_cast<Playout*>(p);
    std::lock_guard<std::mutex> g(po->lock);
    double v[] = {double(po->depth()), double(po->target), double(po->priming),
                  double(po->underruns), double(po->overflow_drops),
                  double(po->samples_removed), double(po->samples_inserted),
                  double(po->accelerated), po->jitter_ms, po->output_dbfs(),
                  po->drift.has_avg ? po->drift.avg : 0.0, double(po->drift.tolerance),
                  double(po->pushed)};
    std::memcpy(out, v, sizeof v);
}

void* spk_new(const double* cfg) { return new Speaker(cfg); }
void spk_free(void* s) { static_cast<Speaker*>(s)->release(); }
void* spk_playout(void* s) { return &static_cast<Speaker*>(s)->playout; }
// The echo canceller's Pairing (capture_path.cpp) fed each block, or none (null).
void spk_set_pairing(void* s, void* pairing) {
    auto* spk = static_cast<Speaker*>(s);
    if (pairing) cp_retain(pairing);
    void* old;
    {
        std::lock_guard<std::mutex> g(spk->lock);
        old = spk->pairing;
        spk->pairing = pairing;
    }
    if (old) cp_free(old);
}
// The generation whose stream plays from now on (-1: none); `fresh`: a switch (its first
// block re-pairs the echo canceller, and its gap from the last block is measured).
void spk_set_generation(void* s, int generation, int fresh) {
    auto* spk = static_cast<Speaker*>(s);
    std::lock_guard<std::mutex> g(spk->lock);
    spk->generation = generation;
    if (fresh) {
        spk->fresh = true;
        spk->has_switched_from = spk->has_end_dac;
        spk->switched_from = spk->end_dac;
    }
}
// last_block, card_underflows, switch_gap_ms (NaN: none), end_dac (NaN: none); then the
// card's last underflow times, oldest first (up to kUnderflowTimes): returns their count.
int spk_counters(void* s, double* out, double* times) {
    auto* spk = static_cast<Speaker*>(s);
    std::lock_guard<std::mutex> g(spk->lock);
    out[0] = spk->last_block;
    out[1] = static_cast<double>(spk->card_underflows);
    out[2] = spk->switch_gap_ms;
    out[3] = spk->has_end_dac ? spk->end_dac : NAN;
    int n = static_cast<int>(std::min<int64_t>(spk->card_underflows, kUnderflowTimes));
    for (int i = 0; i < n; i++)
        times[i] = spk->underflow_times[(spk->card_underflows - n + i) % kUnderflowTimes];
    return n;
}
// The m2e trace (bench/m2e_trace/): keep a record per block from now on (on) or not.
void spk_trace(void* s, int on) {
    auto* spk = static_cast<Speaker*>(s);
    std::lock_guard<std::mutex> g(spk->lock);
    spk->tracing = on != 0;
}
// Up to `max` records (kTraceFields each: time, n, priming, underflow, card, told, depth,
// target, pushed) into `out`, oldest first; returns how many.
int spk_trace_take(void* s, double* out, int max) {
    auto* spk = static_cast<Speaker*>(s);
    std::lock_guard<std::mutex> g(spk->lock);
    int n = std::min(max, static_cast<int>(spk->trace.size() / kTraceFields));
    std::memcpy(out, spk->trace.data(), sizeof(double) * n * kTraceFields);
    spk->trace.erase(spk->trace.begin(), spk->trace.begin() + n * kTraceFields);
    return n;
}

// One pulse playback stream of `generation` playing from the Speaker, with libpulse's
// pa_stream_write, pa_stream_get_timing_info and pa_stream_get_latency.
void* spk_bind(void* s, int generation, int blocksize, double latency, int raw_timing,
               void* write, void* timing, void* get_latency) {
    auto* spk = static_cast<Speaker*>(s);
    spk->refs++;
    auto* b = new Binding{spk, generation, blocksize};
    b->latency = latency;
    b->raw_timing = raw_timing != 0;
    b->write = reinterpret_cast<int (*)(void*, const void*, size_t, void*, int64_t, int)>(write);
    b->timing = reinterpret_cast<const void* (*)(void*)>(timing);
    b->get_latency = reinterpret_cast<int (*)(void*, uint64_t*, int*)>(get_latency);
    return b;
}
// After the stream's callbacks can no longer run (disconnected, its thread joined).
void spk_unbind(void* b) {
    auto* binding = static_cast<Binding*>(b);
    binding->spk->release();
    delete binding;
}
int64_t spk_stream_underflows(void* b) { return static_cast<Binding*>(b)->underflows; }
// PulseStream._play_time for tests: (measured, now, told) -> out[0] time, out[1] flag.
void spk_play_time(void* b, double measured, double now, int told, double* out) {
    auto* binding = static_cast<Binding*>(b);
    if (told) binding->underflow = true;
    auto [t, flag] = binding->play_time(measured, now);
    out[0] = t;
    out[1] = flag;
    binding->next_play = t + static_cast<double>(binding->blocksize) / kRate;
    binding->has_next_play = true;
}

// What _heard_at kept of the server's last report (tests): its time, or < 0 for none.
void spk_test_report(void* b, double report_at) {
    auto* binding = static_cast<Binding*>(b);
    binding->has_report = report_at >= 0;
    binding->report_at = report_at;
}

// Tests: time.monotonic() and time.time() from these functions (null: the real clocks).
void spk_test_clocks(void* mono, void* wall) {
    g_monotonic = mono ? reinterpret_cast<double (*)()>(mono) : real_monotonic;
    g_wallclock = wall ? reinterpret_cast<double (*)()>(wall) : real_wallclock;
}

// libpulse's write callback (pa_stream_request_cb_t), on the stream's mainloop thread with
// its lock held: PulseStream._write and DeviceSink._callback without Python.
void spk_pulse_write(void* stream, size_t nbytes, void* userdata) {
    write_request(static_cast<Binding*>(userdata), stream, nbytes);
}
// libpulse's underflow callback (pa_stream_notify_cb_t): PulseStream._underflowed.
void spk_pulse_underflow(void*, void* userdata) {
    auto* b = static_cast<Binding*>(userdata);
    b->underflows++;
    b->underflow = true;
}

}  // extern "C"
