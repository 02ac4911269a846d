# The executor's contract with kernel modules.
#
# A kernel module that wants zero-overhead dispatch returns a `Call` from its
# bind-time factory: a C function pointer plus a malloc'd argument block
# holding raw pointers into arrays that `keep` keeps alive.  `Program.run`
# walks consecutive C calls with the GIL released; a Python callable (numpy
# fallback ops) breaks the run and is called with the GIL.

ctypedef void (*call_fn)(void *args) noexcept nogil

cdef class Call:
    cdef call_fn fn          # NULL: call `pyfunc` instead
    cdef void *args          # owned: freed in __dealloc__
    cdef object keep         # arrays the pointers in args point into
    cdef object pyfunc

cdef Call make_c_call(call_fn fn, void *args, object keep)
