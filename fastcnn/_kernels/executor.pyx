# cython: language_level=3, boundscheck=False, wraparound=False
# Design: the plan's steps as a flat array of (C function, argument block);
# runs of C steps execute back to back with the GIL released, so per-node
# dispatch costs a few nanoseconds; Python steps (numpy fallbacks) are called
# in between with the GIL held.  Profiling is a separate loop, so ordinary
# runs pay nothing for it.
from libc.stdlib cimport free, malloc
from time import perf_counter


cdef class Call:
    def __cinit__(self):
        self.fn = NULL
        self.args = NULL

    def __dealloc__(self):
        if self.args != NULL:
            free(self.args)
            self.args = NULL

    def __call__(self):
        if self.fn != NULL:
            with nogil:
                self.fn(self.args)
        else:
            self.pyfunc()


cdef Call make_c_call(call_fn fn, void *args, object keep):
    cdef Call c = Call.__new__(Call)
    c.fn = fn
    c.args = args
    c.keep = keep
    return c


def as_call(f):
    """Wrap a Python callable (or pass a Call through)."""
    if isinstance(f, Call):
        return f
    cdef Call c = Call.__new__(Call)
    c.pyfunc = f
    return c


cdef class Program:
    cdef list calls
    cdef Py_ssize_t n
    cdef call_fn *fns
    cdef void **args

    def __cinit__(self, calls):
        self.calls = [as_call(f) for f in calls]
        self.n = len(self.calls)
        self.fns = <call_fn *> malloc(max(self.n, 1) * sizeof(call_fn))
        self.args = <void **> malloc(max(self.n, 1) * sizeof(void *))
        if self.fns == NULL or self.args == NULL:
            raise MemoryError()
        cdef Py_ssize_t i
        cdef Call c
        for i in range(self.n):
            c = self.calls[i]
            self.fns[i] = c.fn
            self.args[i] = c.args

    def __dealloc__(self):
        free(self.fns)
        free(self.args)

    def __len__(self):
        return self.n

    def set(self, Py_ssize_t i, f):
        """Replace step i (used to bind a step to a freshly allocated output)."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        cdef Call c = as_call(f)
        self.calls[i] = c
        self.fns[i] = c.fn
        self.args[i] = c.args

    def n_native(self):
        """How many steps dispatch without Python."""
        cdef Py_ssize_t i, k = 0
        for i in range(self.n):
            if self.fns[i] != NULL:
                k += 1
        return k

    def run(self):
        cdef Py_ssize_t i = 0, n = self.n
        cdef call_fn *fns = self.fns
        cdef void **args = self.args
        while i < n:
            if fns[i] != NULL:
                with nogil:
                    while i < n and fns[i] != NULL:
                        fns[i](args[i])
                        i += 1
            else:
                (<Call> self.calls[i]).pyfunc()
                i += 1

    def run_profiled(self):
        """Run once; return the seconds spent in each step."""
        cdef Py_ssize_t i
        times = []
        clock = perf_counter
        for i in range(self.n):
            t0 = clock()
            if self.fns[i] != NULL:
                with nogil:
                    self.fns[i](self.args[i])
            else:
                (<Call> self.calls[i]).pyfunc()
            times.append(clock() - t0)
        return times
