/* The call-exchange load generator of bench/server_load.py in C (--generator native).

   The generator shares the machine's two cores with the servers it measures;
   in Python (even callback-driven) it took ~0.4 ms of CPU per exchange, a
   fifth of the two cores at 1,000/s. This runs the same exchanges, message
   for message, over the WebSockets bench/server_load.py opened and logged in
   (their descriptors are inherited; Python stops reading them meanwhile):

     caller: call → call-created, ringing, accepted, answer → connected,
             hangup → call-ended
     callee: incoming → ringing, accept → offer → answer → call-ended

   Every message received is checked byte for byte against the server's own
   encoding of the expected message (server_load.py makes the templates with
   the protocol's encoder), the call id taken from call-created and required
   in every later message, refs, names and both SDPs included; only the peer's
   public key (incoming.caller_key, accepted.callee_key), which the Python
   generators did not check either, may be any string. Open loop: exchange i
   is due at t0 + i / rate and its latency runs from that time (queueing
   counts); closed loop (rate 0): each pair starts its next at once.

   Input: a spec file (see server_load.py: native_spec). Output: the marks of
   every finished exchange (7 doubles, CLOCK_MONOTONIC seconds, as
   time.perf_counter) to the marks file, and one summary line on stdout:
   "taken done failed lost misrouted verified t0 t_end utime stime waited", a
   line "broken" with the indices of the pairs that broke, then up to 5 error lines. Build: cc -O2 -o loadgen loadgen.c */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum { LIT, CALLID, REF, OFFER, ANSWER, ANY };
enum { S_CALL, S_CONNECTED, S_HANGUP, S_RINGING, S_ACCEPT, S_ANSWER,
       E_CREATED, E_RINGING, E_ACCEPTED, E_ANSWER, E_ENDED_CALLER,
       E_INCOMING, E_OFFER, E_ENDED_CALLEE, NTEMPLATES };
#define MSGS_PER_EXCHANGE 8
#define CALLID_MAX 128

typedef struct { uint8_t kind; uint32_t len; char *data; } Piece;
typedef struct { uint32_t n; Piece *p; } Template;
typedef struct { uint32_t len; char *data; } Blob;

typedef struct Pair Pair;
typedef struct {
  int fd;
  Pair *pair;
  int is_callee;
  char *in; size_t in_len, in_cap;
  char *out; size_t out_len, out_cap;
  int want_out;
} Conn;

struct Pair {
  Conn caller, callee;
  Template t[NTEMPLATES];
  uint32_t caller_ref, callee_ref;   /* last ref used */
  uint32_t cur_caller_ref, cur_callee_ref;
  int broken, finished, active;      /* active: in an exchange */
  int waiting;                       /* queued for its start time */
  long serial;                       /* 1-based exchange number */
  int step, callee_step, verified;
  char call_id[CALLID_MAX]; size_t call_id_len;
  char callee_call_id[CALLID_MAX]; size_t callee_call_id_len; int callee_ids;
  double marks[7];
  double deadline;
};

static uint32_t npairs, nexch;
static double rate, timeout_s, t0;
static Blob *offers, *answers;
static Pair *pairs;
static long taken, done_n, failed_n, lost_n, misrouted_n, verified_n;
static long running;
static char errors[5][320]; static int nerrors;
static FILE *marks_out;
static int ep;
static Pair **queue; static long q_head, q_tail;   /* pairs waiting for their start */
static char *scratch; static size_t scratch_cap;

static double now(void) {
  struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static void die(const char *what) { fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno)); exit(2); }
static void *xmalloc(size_t n) { void *p = malloc(n ? n : 1); if (!p) die("malloc"); return p; }

/* ------------------------------------------------------------ spec */
static FILE *spec;
static uint32_t rd_u32(void) { uint32_t v; if (fread(&v, 4, 1, spec) != 1) die("spec"); return v; }
static int32_t rd_i32(void) { int32_t v; if (fread(&v, 4, 1, spec) != 1) die("spec"); return v; }
static double rd_f64(void) { double v; if (fread(&v, 8, 1, spec) != 1) die("spec"); return v; }
static Blob rd_blob(void) {
  Blob b; b.len = rd_u32(); b.data = xmalloc(b.len);
  if (b.len && fread(b.data, 1, b.len, spec) != b.len) die("spec");
  return b;
}
static Template rd_template(void) {
  Template t; t.n = rd_u32(); t.p = xmalloc(sizeof(Piece) * t.n);
  for (uint32_t i = 0; i < t.n; i++) {
    uint8_t k; if (fread(&k, 1, 1, spec) != 1) die("spec");
    t.p[i].kind = k;
    Blob b = rd_blob(); t.p[i].len = b.len; t.p[i].data = b.data;
  }
  return t;
}

/* ------------------------------------------------------------ errors */
static void note_error(Pair *pr, int misrouted, const char *fmt, const char *a, size_t alen) {
  if (nerrors >= 5) return;
  char shown[201]; size_t n = alen < 200 ? alen : 200;
  memcpy(shown, a, n); shown[n] = 0;
  snprintf(errors[nerrors++], sizeof errors[0], "%s: pair %ld exchange %ld: %s %s",
           misrouted ? "Misrouted" : "Lost", (long)(pr - pairs), pr->serial, fmt, shown);
}

static void finish(Pair *pr) {
  if (pr->finished) return;
  pr->finished = 1; running--;
}

/* An exchange failed: misrouted (a wrong message) or lost (timeout, connection
   gone); the accounting of server_load.CallStats.fail. */
static void fail(Pair *pr, int misrouted, const char *why, const char *data, size_t len) {
  pr->broken = 1;
  if (!pr->active) {            /* a message outside any exchange */
    misrouted_n++;
    note_error(pr, misrouted, why, data, len);
  } else {
    failed_n++;
    if (misrouted) { misrouted_n++; lost_n += MSGS_PER_EXCHANGE - pr->verified - 1; }
    else lost_n += MSGS_PER_EXCHANGE - pr->verified;
    note_error(pr, misrouted, why, data, len);
  }
  pr->active = 0;
  finish(pr);
}

/* ------------------------------------------------------------ output */
static void flush_out(Conn *c) {
  while (c->out_len) {
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (errno == EINTR) continue;
      fail(c->pair, 0, "write failed", "", 0); c->out_len = 0; return;
    }
    memmove(c->out, c->out + w, c->out_len - w); c->out_len -= w;
  }
  int want = c->out_len > 0;
  if (want != c->want_out) {
    struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
  }
}

static void send_frame(Conn *c, const char *payload, size_t n, int opcode) {
  size_t need = n + 14;
  if (scratch_cap < need) { scratch_cap = need * 2; scratch = realloc(scratch, scratch_cap); if (!scratch) die("realloc"); }
  size_t h = 0;
  scratch[h++] = (char)(0x80 | opcode);
  if (n < 126) scratch[h++] = (char)(0x80 | n);
  else if (n < 65536) { scratch[h++] = (char)(0x80 | 126); scratch[h++] = n >> 8; scratch[h++] = n & 0xff; }
  else { scratch[h++] = (char)(0x80 | 127); for (int i = 7; i >= 0; i--) scratch[h++] = (n >> (8 * i)) & 0xff; }
  memset(scratch + h, 0, 4); h += 4;    /* a zero masking key: the payload goes out as is */
  memcpy(scratch + h, payload, n);
  size_t total = h + n, off = 0;
  if (!c->out_len) {
    while (off < total) {
      ssize_t w = write(c->fd, scratch + off, total - off);
      if (w < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) break; fail(c->pair, 0, "write failed", "", 0); return; }
      off += w;
    }
  }
  if (off < total) {
    size_t rest = total - off;
    if (c->out_cap < c->out_len + rest) { c->out_cap = (c->out_len + rest) * 2; c->out = realloc(c->out, c->out_cap); if (!c->out) die("realloc"); }
    memcpy(c->out + c->out_len, scratch + off, rest); c->out_len += rest;
    flush_out(c);
  }
}

static char *build; static size_t build_cap;
static size_t expand(Pair *pr, const Template *t, uint32_t ref, const char *cid, size_t cid_len) {
  size_t n = 0; char num[16];
  for (uint32_t i = 0; i < t->n; i++) {
    const char *src; size_t len;
    switch (t->p[i].kind) {
      case LIT: src = t->p[i].data; len = t->p[i].len; break;
      case CALLID: src = cid; len = cid_len; break;
      case REF: len = snprintf(num, sizeof num, "%u", ref); src = num; break;
      case OFFER: src = offers[pr->serial - 1].data; len = offers[pr->serial - 1].len; break;
      case ANSWER: src = answers[pr->serial - 1].data; len = answers[pr->serial - 1].len; break;
      default: src = ""; len = 0;
    }
    if (build_cap < n + len) { build_cap = (n + len) * 2; build = realloc(build, build_cap); if (!build) die("realloc"); }
    memcpy(build + n, src, len); n += len;
  }
  return n;
}

static void send_t(Conn *c, int which, uint32_t ref, const char *cid, size_t cid_len) {
  size_t n = expand(c->pair, &c->pair->t[which], ref, cid, cid_len);
  send_frame(c, build, n, 1);
}

/* Does msg match the template? A CALLID hole with cid NULL captures the id. */
static int match(Pair *pr, const Template *t, const char *m, size_t n, uint32_t ref,
                 const char *cid, size_t cid_len, char *cap, size_t *cap_len) {
  size_t pos = 0; char num[16];
  for (uint32_t i = 0; i < t->n; i++) {
    const Piece *pc = &t->p[i];
    const char *src = NULL; size_t len = 0;
    switch (pc->kind) {
      case LIT: src = pc->data; len = pc->len; break;
      case REF: len = snprintf(num, sizeof num, "%u", ref); src = num; break;
      case OFFER: src = offers[pr->serial - 1].data; len = offers[pr->serial - 1].len; break;
      case ANSWER: src = answers[pr->serial - 1].data; len = answers[pr->serial - 1].len; break;
      case CALLID:
        if (cid) { src = cid; len = cid_len; break; }
        /* capture: up to the closing quote (an id never holds one) */
        { size_t s = pos; while (pos < n && m[pos] != '"' && m[pos] != '\\') pos++;
          if (pos == s || pos - s >= CALLID_MAX) return 0;
          memcpy(cap, m + s, pos - s); *cap_len = pos - s; }
        continue;
      case ANY:  /* any JSON string body: up to an unescaped quote */
        while (pos < n && m[pos] != '"') { if (m[pos] == '\\') pos++; pos++; }
        if (pos > n) return 0;
        continue;
    }
    if (n - pos < len || memcmp(m + pos, src, len) != 0) return 0;
    pos += len;
  }
  return pos == n;
}

/* ------------------------------------------------------------ exchanges */
static void start(Pair *pr, double t_sched) {
  pr->active = 1;
  pr->step = pr->callee_step = pr->verified = 0;
  pr->call_id_len = pr->callee_call_id_len = 0; pr->callee_ids = 0;
  pr->marks[0] = t_sched; pr->marks[1] = now();
  for (int i = 2; i < 7; i++) pr->marks[i] = 0;
  pr->deadline = pr->marks[1] + timeout_s;
  pr->cur_caller_ref = ++pr->caller_ref;
  send_t(&pr->caller, S_CALL, pr->cur_caller_ref, "", 0);
}

static void next(Pair *pr) {
  pr->active = 0;
  if (pr->broken || taken >= (long)nexch) { finish(pr); return; }
  pr->serial = ++taken;
  double t_sched = rate > 0 ? t0 + (pr->serial - 1) / rate : now();
  if (rate > 0 && t_sched > now()) { pr->waiting = 1; queue[q_tail++] = pr; pr->marks[0] = t_sched; }
  else start(pr, t_sched);
}

static void check_end(Pair *pr) {
  if (!pr->active || pr->step != 5 || pr->callee_step != 3) return;
  if (pr->callee_ids != 1 || pr->callee_call_id_len != pr->call_id_len ||
      memcmp(pr->callee_call_id, pr->call_id, pr->call_id_len) != 0) {
    fail(pr, 1, "callee saw another call id than the caller", pr->callee_call_id, pr->callee_call_id_len);
    return;
  }
  pr->marks[6] = now();
  fwrite(pr->marks, sizeof(double), 7, marks_out);
  verified_n += pr->verified; done_n++;
  next(pr);
}

static void on_caller(Pair *pr, const char *m, size_t n) {
  if (!pr->active) { fail(pr, 1, "caller: unexpected", m, n); return; }
  static const int want[5] = { E_CREATED, E_RINGING, E_ACCEPTED, E_ANSWER, E_ENDED_CALLER };
  int s = pr->step;
  if (s >= 5) { fail(pr, 1, "caller: unexpected after the end", m, n); return; }
  int ok = s == 0
    ? match(pr, &pr->t[E_CREATED], m, n, pr->cur_caller_ref, NULL, 0, pr->call_id, &pr->call_id_len)
    : match(pr, &pr->t[want[s]], m, n, pr->cur_caller_ref, pr->call_id, pr->call_id_len, NULL, NULL);
  if (!ok) { fail(pr, 1, "caller: not the expected message:", m, n); return; }
  if (s == 3) {
    pr->marks[4] = now();
    send_t(&pr->caller, S_CONNECTED, 0, pr->call_id, pr->call_id_len);
    pr->cur_caller_ref = ++pr->caller_ref;
    send_t(&pr->caller, S_HANGUP, pr->cur_caller_ref, pr->call_id, pr->call_id_len);
  } else if (s == 4) pr->marks[5] = now();
  pr->verified++; pr->step = s + 1;
  if (pr->step == 5) check_end(pr);
}

static void on_callee(Pair *pr, const char *m, size_t n) {
  if (!pr->active) { fail(pr, 1, "callee: unexpected", m, n); return; }
  int s = pr->callee_step;
  if (s == 0) {
    char cid[CALLID_MAX]; size_t cl = 0;
    if (!match(pr, &pr->t[E_INCOMING], m, n, 0, NULL, 0, cid, &cl)) { fail(pr, 1, "callee: not the expected incoming:", m, n); return; }
    memcpy(pr->callee_call_id, cid, cl); pr->callee_call_id_len = cl; pr->callee_ids++;
    pr->marks[2] = now();
    pr->cur_callee_ref = ++pr->callee_ref;
    send_t(&pr->callee, S_RINGING, 0, cid, cl);
    send_t(&pr->callee, S_ACCEPT, pr->cur_callee_ref, cid, cl);
  } else if (s == 1) {
    if (!match(pr, &pr->t[E_OFFER], m, n, pr->cur_callee_ref, pr->callee_call_id, pr->callee_call_id_len, NULL, NULL)) { fail(pr, 1, "callee: not the expected offer:", m, n); return; }
    pr->marks[3] = now();
    send_t(&pr->callee, S_ANSWER, 0, pr->callee_call_id, pr->callee_call_id_len);
  } else if (s == 2) {
    if (!match(pr, &pr->t[E_ENDED_CALLEE], m, n, 0, pr->callee_call_id, pr->callee_call_id_len, NULL, NULL)) { fail(pr, 1, "callee: not the expected call-ended:", m, n); return; }
  } else { fail(pr, 1, "callee: unexpected after the end", m, n); return; }
  pr->verified++; pr->callee_step = s + 1;
  if (pr->callee_step == 3) check_end(pr);
}

/* ------------------------------------------------------------ input */
static void on_readable(Conn *c) {
  Pair *pr = c->pair;
  for (;;) {
    if (c->in_cap - c->in_len < 65536) { c->in_cap = c->in_cap * 2 + 65536; c->in = realloc(c->in, c->in_cap); if (!c->in) die("realloc"); }
    ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
    if (r < 0) { if (errno == EINTR) continue; if (errno == EAGAIN) break; if (!pr->broken) fail(pr, 0, "connection error", "", 0); return; }
    if (r == 0) { if (!pr->broken) fail(pr, 0, "connection ended", "", 0); epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL); return; }
    c->in_len += r;
    if ((size_t)r < c->in_cap - c->in_len + r) break;  /* short read: drained */
  }
  size_t pos = 0, size = c->in_len;
  const unsigned char *b = (const unsigned char *)c->in;
  while (size - pos >= 2) {
    unsigned b0 = b[pos], b1 = b[pos + 1];
    uint64_t n = b1 & 0x7f; size_t head = 2;
    if (n == 126) { if (size - pos < 4) break; n = ((uint64_t)b[pos + 2] << 8) | b[pos + 3]; head = 4; }
    else if (n == 127) { if (size - pos < 10) break; n = 0; for (int i = 0; i < 8; i++) n = (n << 8) | b[pos + 2 + i]; head = 10; }
    if (b1 & 0x80) { fail(pr, 1, "masked frame from the server", "", 0); return; }
    if (size - pos < head + n) break;
    char *payload = c->in + pos + head;
    pos += head + n;
    unsigned opcode = b0 & 0x0f;
    if (!(b0 & 0x80) || opcode == 0) { fail(pr, 1, "fragmented frame", "", 0); return; }
    if (opcode == 1) {
      if (pr->broken) continue;
      if (c->is_callee) on_callee(pr, payload, n); else on_caller(pr, payload, n);
    } else if (opcode == 9) send_frame(c, payload, n, 10);
    else if (opcode == 8) { if (!pr->broken) fail(pr, 0, "close frame", "", 0); }
  }
  if (pos) { memmove(c->in, c->in + pos, size - pos); c->in_len = size - pos; }
}

int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: loadgen SPEC MARKS\n"); return 2; }
  spec = fopen(argv[1], "rb"); if (!spec) die(argv[1]);
  marks_out = fopen(argv[2], "wb"); if (!marks_out) die(argv[2]);
  npairs = rd_u32(); nexch = rd_u32(); rate = rd_f64(); timeout_s = rd_f64();
  offers = xmalloc(sizeof(Blob) * nexch); answers = xmalloc(sizeof(Blob) * nexch);
  for (uint32_t i = 0; i < nexch; i++) { offers[i] = rd_blob(); answers[i] = rd_blob(); }
  pairs = calloc(npairs, sizeof(Pair)); queue = xmalloc(sizeof(Pair *) * (nexch + npairs + 1));
  ep = epoll_create1(0); if (ep < 0) die("epoll");
  for (uint32_t i = 0; i < npairs; i++) {
    Pair *pr = &pairs[i];
    pr->caller.fd = rd_i32(); pr->callee.fd = rd_i32();
    pr->caller_ref = rd_u32(); pr->callee_ref = rd_u32();
    for (int k = 0; k < NTEMPLATES; k++) pr->t[k] = rd_template();
    Conn *cs[2] = { &pr->caller, &pr->callee };
    for (int k = 0; k < 2; k++) {
      cs[k]->pair = pr; cs[k]->is_callee = k;
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = cs[k] };
      if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[k]->fd, &ev) < 0) die("epoll_ctl");
    }
  }
  fclose(spec);
  running = npairs;
  t0 = now() + (rate > 0 ? 0.05 : 0.0);  /* open loop starts a little ahead, as Jobs does */
  for (uint32_t i = 0; i < npairs; i++) next(&pairs[i]);
  struct epoll_event evs[256];
  double last_scan = now();
  while (running > 0) {
    double t = now();
    while (q_head < q_tail && queue[q_head]->marks[0] <= t) {
      Pair *pr = queue[q_head++]; pr->waiting = 0;
      if (pr->broken) { finish(pr); continue; }
      start(pr, pr->marks[0]);
    }
    if (t - last_scan > 0.1) {   /* timeouts: a message not there within timeout_s is lost */
      last_scan = t;
      for (uint32_t i = 0; i < npairs; i++) {
        Pair *pr = &pairs[i];
        if (pr->active && !pr->broken && t > pr->deadline) {
          char what[64]; int len = snprintf(what, sizeof what, "%ld", pr->serial);
          fail(pr, 0, "timeout in exchange", what, len);
        }
      }
    }
    if (running <= 0) break;
    /* Sleep until the next start (to the microsecond: no spinning, not late by the
       millisecond an epoll_wait timeout would round to), or 0.1 s. */
    double d = 0.1;
    if (q_head < q_tail) {
      d = queue[q_head]->marks[0] - now();
      if (d < 0) d = 0;
      if (d > 0.1) d = 0.1;
    }
    struct timespec ts = { .tv_sec = 0, .tv_nsec = (long)(d * 1e9) };
    int k = epoll_pwait2(ep, evs, 256, &ts, NULL);
    if (k < 0) { if (errno == EINTR) continue; die("epoll_wait"); }
    for (int i = 0; i < k; i++) {
      Conn *c = evs[i].data.ptr;
      if (evs[i].events & EPOLLOUT) flush_out(c);
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
  double t_end = now();
  for (uint32_t i = 0; i < npairs; i++) {   /* what is queued to send goes out before exit */
    Conn *cs[2] = { &pairs[i].caller, &pairs[i].callee };
    for (int k = 0; k < 2; k++) { int tries = 0; while (cs[k]->out_len && tries++ < 1000) { flush_out(cs[k]); if (cs[k]->out_len) usleep(1000); } }
  }
  fclose(marks_out);
  struct rusage ru; getrusage(RUSAGE_SELF, &ru);
  unsigned long long run_ns = 0, wait_ns = 0;  /* time run, and waited runnable for a CPU */
  FILE *sch = fopen("/proc/self/schedstat", "r");
  if (sch) { if (fscanf(sch, "%llu %llu", &run_ns, &wait_ns) != 2) wait_ns = 0; fclose(sch); }
  printf("%ld %ld %ld %ld %ld %ld %.9f %.9f %.6f %.6f %.6f\n", taken, done_n, failed_n, lost_n,
         misrouted_n, verified_n, t0, t_end,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6,
         wait_ns * 1e-9);
  printf("broken");
  for (uint32_t i = 0; i < npairs; i++) if (pairs[i].broken) printf(" %u", i);
  printf("\n");
  for (int i = 0; i < nerrors; i++) printf("%s\n", errors[i]);
  return 0;
}
