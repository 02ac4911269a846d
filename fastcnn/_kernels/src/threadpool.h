/* threadpool.h -- fastcnn's own work-claiming thread pool (one per process).
 *
 * Included by threadpool.pyx only; every kernel module reaches it through that
 * module's cimported `parallel_for`.
 *
 * A job is (fn, ctx, n items, nt threads).  The caller publishes it and then works
 * on it too; workers 0 .. nt-2 join in.  By default (fc_pool.home) thread t owns the
 * t-th of nt equal item ranges and claims from it with a CAS on the range's word
 * (generation, next, end), then steals from the others' ends (fc_pool_work_home), so
 * steps that split their data alike keep it in one core's cache; otherwise, and for
 * jobs over 2^20 items, items are claimed with a CAS on one 64-bit word
 * (generation << 32 | next item; guided chunks, see fc_pool_work).  Either way a
 * worker that shows up late (descheduled by another process) finds nothing left and
 * costs the job nothing, and a worker that is still looking at an old job cannot claim
 * an item of the new one (home ranges compare the generation mod 2^24: a worker would
 * have to stall across 16M jobs and meet an identical range word).  There is no team barrier: the caller waits only for items that are
 * actually in progress.  (OpenMP's fork/join waits for every team member to arrive,
 * a scheduler quantum whenever one of them is descheduled.)
 *
 * Waiting policy: after a job, workers spin for `spin_us` microseconds (default
 * 200, FASTCNN_SPIN_US or set_spin_us) so the next node's job finds them awake,
 * then sleep on a condition variable; they never burn a core for longer than that
 * after a run returns.  Workers run with FTZ/DAZ set for their whole life; the
 * caller sets it for the duration of each job.
 *
 * One job at a time: a second thread calling in while a job runs (two sessions
 * run from two Python threads, or a nested call from inside an item) runs its job
 * serially on its own thread instead of waiting.
 */
#ifndef FASTCNN_THREADPOOL_H
#define FASTCNN_THREADPOOL_H

#include <stdint.h>
#include <stdlib.h>
#include "cpu.h"

typedef void (*fc_task_fn)(void *ctx, long item);

#if defined(_WIN32)
/* no pthreads: every job runs on the calling thread */
static struct { long spin_ns; int n_workers; int home; } fc_pool = {0, 0, 0};
static int fc_pool_thread_index(void) { return 0; }
static void fc_pool_init(void) {}
static void fc_parallel_for(int nt, long n, fc_task_fn fn, void *ctx) {
    (void)nt;
    unsigned int ftz = fastcnn_ftz_enter();
    for (long i = 0; i < n; i++)
        fn(ctx, i);
    fastcnn_ftz_leave(ftz);
}
#else
#include <pthread.h>
#include <sched.h>
#include <time.h>

#if defined(__linux__) && defined(_GNU_SOURCE)
#define FC_POOL_AFFINITY 1
/* The caller's CPU at the job's start; a worker that finds itself on it moves away.
 * (Linux places a thread woken by the caller on the caller's CPU when it thinks they
 * share data; with the caller spinning there both then crawl on one CPU while another
 * idles -- seen as 2-thread runs 2x slower after a pause of some ms between runs.) */
static void fc_pool_move_off(int cpu) {
    cpu_set_t all, other;
    if (sched_getaffinity(0, sizeof(all), &all) != 0 || !CPU_ISSET(cpu, &all) || CPU_COUNT(&all) < 2)
        return;
    other = all;
    CPU_CLR(cpu, &other);
    if (sched_setaffinity(0, sizeof(other), &other) == 0)   /* migrates now */
        sched_setaffinity(0, sizeof(all), &all);             /* and may come back later */
}
#else
#define FC_POOL_AFFINITY 0
#endif

#define FC_POOL_MAX 256

static struct {
    /* the job (written by the caller before it publishes the generation) */
    fc_task_fn fn;
    void *ctx;
    long n;
    int nt;
    int caller_cpu;
    uint64_t word;          /* generation << 32 | next unclaimed item */
    long done;              /* items finished in this generation */
    int sleepers;
    int n_workers;
    long spin_ns;
    int home;               /* 1: claims from home ranges (fc_pool_work_home), 0: guided */
    pthread_mutex_t run_mu; /* held by the thread whose job is running */
    pthread_mutex_t mu;     /* sleeping, thread creation */
    pthread_cond_t cv;
} fc_pool = {0, 0, 0, 0, -1, 0, 0, 0, 0, 200000L, 1,
             PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* Home ranges: thread t of a job owns items [t*n/nt, (t+1)*n/nt).  One word per range,
 * in its own cache line: generation (low 24 bits) << 40 | next << 20 | end.  The owner
 * claims from the front, a thread whose range is empty steals from the back of
 * another's, each claim half of what is left (at least one item). */
#define FC_HOME_BITS 20
#define FC_HOME_MAX (1L << FC_HOME_BITS)
#define FC_HOME_MASK ((uint64_t)FC_HOME_MAX - 1u)
static struct { uint64_t w; char pad[56]; } fc_home[FC_POOL_MAX + 1] __attribute__((aligned(64)));

/* Index of the calling thread within the running job, in [0, nt): the caller is 0,
 * worker w is w + 1 (only workers w < nt - 1 join a job).  For per-thread scratch
 * that a job allocates for nt threads. */
static __thread int fc_pool_tid = 0;

static int fc_pool_thread_index(void) { return fc_pool_tid; }

static inline void fc_pool_relax(void) {
#if FASTCNN_X86
    _mm_pause();
#endif
}

static inline long fc_pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claim and run items of generation `gen` until none are left.  Claims are guided
 * chunks, ceil(left / 2nt) items: the first ones big (each thread's items mostly
 * contiguous, so a conv's weights stay in one core's cache as with a static split),
 * the last ones single items (a thread that starts late only shortens its share). */
static void fc_pool_work(uint32_t gen, fc_task_fn fn, void *ctx, long n, int nt) {
    uint64_t cur = __atomic_load_n(&fc_pool.word, __ATOMIC_ACQUIRE);
    while ((uint32_t)(cur >> 32) == gen && (long)(cur & 0xffffffffu) < n) {
        long first = (long)(cur & 0xffffffffu);
        long chunk = (n - first + 2L * nt - 1) / (2L * nt);
        if (__atomic_compare_exchange_n(&fc_pool.word, &cur, cur + (uint64_t)chunk, 1,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            for (long i = first; i < first + chunk; i++)
                fn(ctx, i);
            __atomic_fetch_add(&fc_pool.done, chunk, __ATOMIC_RELEASE);
            cur = __atomic_load_n(&fc_pool.word, __ATOMIC_ACQUIRE);
        }
    }
}

static inline uint64_t fc_home_word(uint32_t gen, long next, long end) {
    return ((uint64_t)(gen & 0xffffffu) << (2 * FC_HOME_BITS)) | ((uint64_t)next << FC_HOME_BITS)
           | (uint64_t)end;
}

/* Claim from range r until it is empty (own: from the front; else from the back). */
static void fc_home_drain(int r, int own, uint32_t gen, fc_task_fn fn, void *ctx) {
    uint64_t cur = __atomic_load_n(&fc_home[r].w, __ATOMIC_ACQUIRE);
    for (;;) {
        if ((uint32_t)(cur >> (2 * FC_HOME_BITS)) != (gen & 0xffffffu))
            return;                                         /* a newer job's range */
        long next = (long)((cur >> FC_HOME_BITS) & FC_HOME_MASK), end = (long)(cur & FC_HOME_MASK);
        if (next >= end)
            return;
        long chunk = (end - next + 1) / 2, first = own ? next : end - chunk;
        uint64_t want = own ? fc_home_word(gen, next + chunk, end) : fc_home_word(gen, next, end - chunk);
        if (!__atomic_compare_exchange_n(&fc_home[r].w, &cur, want, 1, __ATOMIC_ACQ_REL,
                                         __ATOMIC_ACQUIRE))
            continue;
        for (long i = first; i < first + chunk; i++)
            fn(ctx, i);
        __atomic_fetch_add(&fc_pool.done, chunk, __ATOMIC_RELEASE);
        cur = __atomic_load_n(&fc_home[r].w, __ATOMIC_ACQUIRE);
    }
}

/* Thread `me`'s share of job `gen`: its own range, then the others' leftovers. */
static void fc_pool_work_home(int me, uint32_t gen, fc_task_fn fn, void *ctx, int nt) {
    fc_home_drain(me, 1, gen, fn, ctx);
    for (int k = 1; k < nt; k++)
        fc_home_drain((me + k) % nt, 0, gen, fn, ctx);
}

static void *fc_pool_worker(void *arg) {
    int w = (int)(intptr_t)arg;
    fc_pool_tid = w + 1;
    /* the job that made this worker may already be published: look at it once */
    uint32_t seen = (uint32_t)(__atomic_load_n(&fc_pool.word, __ATOMIC_ACQUIRE) >> 32) - 1u;
    long spin_from = fc_pool_now_ns();
    unsigned spins = 0;
    fastcnn_ftz_enter();
    for (;;) {
        uint64_t cur = __atomic_load_n(&fc_pool.word, __ATOMIC_ACQUIRE);
        uint32_t gen = (uint32_t)(cur >> 32);
        if (gen == seen) {
            fc_pool_relax();
            if ((++spins & 63u) != 0)
                continue;
            if (fc_pool_now_ns() - spin_from < __atomic_load_n(&fc_pool.spin_ns, __ATOMIC_RELAXED))
                continue;
            pthread_mutex_lock(&fc_pool.mu);
            __atomic_fetch_add(&fc_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            while ((uint32_t)(__atomic_load_n(&fc_pool.word, __ATOMIC_SEQ_CST) >> 32) == seen)
                pthread_cond_wait(&fc_pool.cv, &fc_pool.mu);
            __atomic_fetch_sub(&fc_pool.sleepers, 1, __ATOMIC_SEQ_CST);
            pthread_mutex_unlock(&fc_pool.mu);
            continue;
        }
        seen = gen;
        /* The job's fields may already belong to a newer generation; then the claim's
         * CAS (which checks `gen`) fails and nothing runs with them. */
        fc_task_fn fn = __atomic_load_n(&fc_pool.fn, __ATOMIC_RELAXED);
        void *ctx = __atomic_load_n(&fc_pool.ctx, __ATOMIC_RELAXED);
        long n = __atomic_load_n(&fc_pool.n, __ATOMIC_RELAXED);
        int nt = __atomic_load_n(&fc_pool.nt, __ATOMIC_RELAXED);
        if (w < nt - 1) {
#if FC_POOL_AFFINITY
            int cc = __atomic_load_n(&fc_pool.caller_cpu, __ATOMIC_RELAXED);
            if (cc >= 0 && sched_getcpu() == cc)
                fc_pool_move_off(cc);
#endif
            if (n < 0)
                fc_pool_work_home(w + 1, gen, fn, ctx, nt);
            else
                fc_pool_work(gen, fn, ctx, n, nt);
        }
        spin_from = fc_pool_now_ns();
        spins = 0;
    }
    return NULL;   /* not reached: workers live as long as the process */
}

/* Start workers until there are `want` (bounded by FC_POOL_MAX); returns how many exist. */
static int fc_pool_grow(int want) {
    if (want > FC_POOL_MAX)
        want = FC_POOL_MAX;
    if (__atomic_load_n(&fc_pool.n_workers, __ATOMIC_ACQUIRE) >= want)
        return want;
    pthread_mutex_lock(&fc_pool.mu);
    while (fc_pool.n_workers < want) {
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &attr, fc_pool_worker, (void *)(intptr_t)fc_pool.n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0)
            break;
        __atomic_store_n(&fc_pool.n_workers, fc_pool.n_workers + 1, __ATOMIC_RELEASE);
    }
    int have = fc_pool.n_workers;
    pthread_mutex_unlock(&fc_pool.mu);
    return have;
}

static void fc_pool_serial(fc_task_fn fn, void *ctx, long n) {
    int tid = fc_pool_tid;  /* a nested job on a worker: index 0 of its own job */
    fc_pool_tid = 0;
    unsigned int ftz = fastcnn_ftz_enter();
    for (long i = 0; i < n; i++)
        fn(ctx, i);
    fastcnn_ftz_leave(ftz);
    fc_pool_tid = tid;
}

/* Run fn(ctx, i) for i in [0, n) on up to nt threads (the caller is one of them). */
static void fc_parallel_for(int nt, long n, fc_task_fn fn, void *ctx) {
    if (n <= 0)
        return;
    if (nt > n)
        nt = (int)n;
    if (nt <= 1 || n > 0x7fffffffL || pthread_mutex_trylock(&fc_pool.run_mu) != 0) {
        fc_pool_serial(fn, ctx, n);
        return;
    }
    int have = fc_pool_grow(nt - 1);
    if (have < nt - 1)
        nt = have + 1;
    if (nt <= 1) {
        pthread_mutex_unlock(&fc_pool.run_mu);
        fc_pool_serial(fn, ctx, n);
        return;
    }
    uint32_t gen = (uint32_t)(__atomic_load_n(&fc_pool.word, __ATOMIC_ACQUIRE) >> 32) + 1;
    /* home ranges when asked for and the items fit a range word; the job's n is then
     * published as -1 (the workers look at the ranges only) */
    int home = __atomic_load_n(&fc_pool.home, __ATOMIC_RELAXED) && n <= FC_HOME_MAX;
    if (home)
        for (int t = 0; t < nt; t++)
            __atomic_store_n(&fc_home[t].w, fc_home_word(gen, t * n / nt, (t + 1) * n / nt),
                             __ATOMIC_RELAXED);
    __atomic_store_n(&fc_pool.fn, fn, __ATOMIC_RELAXED);
    __atomic_store_n(&fc_pool.ctx, ctx, __ATOMIC_RELAXED);
    __atomic_store_n(&fc_pool.n, home ? -1L : n, __ATOMIC_RELAXED);
    __atomic_store_n(&fc_pool.nt, nt, __ATOMIC_RELAXED);
    __atomic_store_n(&fc_pool.done, 0, __ATOMIC_RELAXED);
#if FC_POOL_AFFINITY
    __atomic_store_n(&fc_pool.caller_cpu, sched_getcpu(), __ATOMIC_RELAXED);
#endif
    __atomic_store_n(&fc_pool.word, (uint64_t)gen << 32, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&fc_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&fc_pool.mu);
        pthread_cond_broadcast(&fc_pool.cv);
        pthread_mutex_unlock(&fc_pool.mu);
    }
    unsigned int ftz = fastcnn_ftz_enter();
    if (home)
        fc_pool_work_home(0, gen, fn, ctx, nt);
    else
        fc_pool_work(gen, fn, ctx, n, nt);
    /* only items that a worker is running are left: wait for them (yielding now and
     * then, in case that worker waits for this CPU) */
    unsigned spins = 0;
    while (__atomic_load_n(&fc_pool.done, __ATOMIC_ACQUIRE) < n) {
        fc_pool_relax();
        if ((++spins & 63u) == 0)
            sched_yield();
    }
    fastcnn_ftz_leave(ftz);
    pthread_mutex_unlock(&fc_pool.run_mu);
}

/* After fork() only the forking thread exists in the child: forget the workers. */
static void fc_pool_atfork_child(void) {
    pthread_mutex_init(&fc_pool.run_mu, NULL);
    pthread_mutex_init(&fc_pool.mu, NULL);
    pthread_cond_init(&fc_pool.cv, NULL);
    fc_pool.n_workers = 0;
    fc_pool.sleepers = 0;
}

static void fc_pool_init(void) {
    const char *h = getenv("FASTCNN_SCHEDULE");
    if (h && *h)
        fc_pool.home = h[0] != 'g';      /* "guided" or "home" */
    const char *s = getenv("FASTCNN_SPIN_US");
    if (s && *s) {
        long us = atol(s);
        if (us >= 0)
            fc_pool.spin_ns = us * 1000L;
    }
    pthread_atfork(NULL, NULL, fc_pool_atfork_child);
}

#endif /* _WIN32 */
#endif
