# cython: language_level=3
# fastcnn's work-claiming thread pool (src/threadpool.h): every parallel kernel runs its
# items through parallel_for; see threadpool.pyx.

ctypedef void (*task_fn)(void *ctx, long item) noexcept nogil

cdef void parallel_for(int n_threads, long n_items, task_fn fn, void *ctx) noexcept nogil

# index of the calling thread within the running job, in [0, n_threads): for per-thread scratch
cdef int thread_index() noexcept nogil
