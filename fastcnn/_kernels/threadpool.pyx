# cython: language_level=3
"""The process's one thread pool (src/threadpool.h has the design).

Kernels cimport `parallel_for(n_threads, n_items, fn, ctx)`: fn(ctx, i) runs once for
every item, on the calling thread and up to n_threads - 1 pool workers, each of which
works through its own range of the items and then steals from the others' (a worker
that another process keeps off its CPU costs the job nothing unless it holds an item;
set_schedule("guided") claims guided chunks from one counter instead).  Workers spin `spin_us` microseconds after each job,
then sleep; FASTCNN_SPIN_US sets the default (200)."""

cdef extern from "threadpool.h" nogil:
    ctypedef void (*fc_task_fn)(void *ctx, long item) noexcept nogil
    void fc_parallel_for(int nt, long n, fc_task_fn fn, void *ctx)
    void fc_pool_init()
    int fc_pool_thread_index()
    ctypedef struct fc_pool_t:
        long spin_ns
        int n_workers
        int home
    fc_pool_t fc_pool


cdef void parallel_for(int n_threads, long n_items, task_fn fn, void *ctx) noexcept nogil:
    fc_parallel_for(n_threads, n_items, <fc_task_fn>fn, ctx)


cdef int thread_index() noexcept nogil:
    return fc_pool_thread_index()


fc_pool_init()


def set_spin_us(long us):
    """Microseconds a worker spins after a job before it sleeps (0: sleep at once);
    returns the previous value."""
    if us < 0:
        raise ValueError(f"spin time must be >= 0 microseconds, got {us}")
    prev = fc_pool.spin_ns // 1000
    fc_pool.spin_ns = us * 1000
    return prev


def spin_us():
    return fc_pool.spin_ns // 1000


def set_schedule(name):
    """How threads share a job's items: "home" (default; thread t owns the t-th of nt
    equal ranges and steals from the others' ends when done, so consecutive steps that
    split their data the same way find it in the same core's cache) or "guided" (one
    shared counter, chunks of what is left / 2nt).  FASTCNN_SCHEDULE sets the default.
    Returns the previous name."""
    if name not in ("home", "guided"):
        raise ValueError(f"schedule must be 'home' or 'guided', got {name!r}")
    prev = "home" if fc_pool.home else "guided"
    fc_pool.home = 1 if name == "home" else 0
    return prev


def n_workers():
    """Pool threads started so far (they start on first use; n_threads - 1 per job)."""
    return fc_pool.n_workers


# ---------------------------------------------------------------- test hooks
cdef struct _sum_ctx:
    double *out
    long per

cdef void _sum_item(void *ctx, long i) noexcept nogil:
    cdef _sum_ctx *c = <_sum_ctx *> ctx
    cdef long k
    cdef double s = 0
    for k in range(c.per):
        s += i * c.per + k
    c.out[i] = s


def _selftest(int n_threads, long n_items, long per=1000):
    """Each item i writes sum(range(i*per, (i+1)*per)) to out[i]; returns out (tests)."""
    import numpy as np
    out = np.full(max(n_items, 1), -1.0)
    cdef double[::1] o = out
    cdef _sum_ctx c
    c.out = &o[0]
    c.per = per
    with nogil:
        parallel_for(n_threads, n_items, _sum_item, &c)
    return out[:n_items]
