"""The one threading policy.

Default thread count: OMP_NUM_THREADS if set, else the CPUs this process may
run on (physical cores on the machines we target; SMT siblings are not
counted when the OS tells us).  A session's `num_threads` overrides it and is
passed down explicitly to every kernel as `n_threads`, which runs its work
items on fastcnn's own thread pool (`_kernels/threadpool.pyx`: the calling
thread plus n_threads - 1 workers).  Workloads too small to amortize a thread
wake-up run serially (`threads_for`).

After a job the pool's workers spin `spin_us` microseconds (default 200, or
FASTCNN_SPIN_US), so the next node finds them awake, then sleep: a session
never keeps a core busy for longer than that after `run` returns.
"""
from __future__ import annotations

import os

# Work (in multiply-adds or element-ops) below which one thread is faster.
SERIAL_WORK = 1 << 15


def _physical_cores() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:
        n = os.cpu_count() or 1
    try:  # Linux: count distinct (package, core) pairs among allowed CPUs
        cores = set()
        allowed = os.sched_getaffinity(0)
        for cpu in allowed:
            base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
            with open(base + "core_id") as f:
                core = f.read().strip()
            with open(base + "physical_package_id") as f:
                pkg = f.read().strip()
            cores.add((pkg, core))
        if cores:
            n = min(n, len(cores))
    except (OSError, AttributeError):
        pass
    return max(1, n)


def default_threads() -> int:
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return _physical_cores()


def resolve(num_threads) -> int:
    if num_threads is None or num_threads == 0:
        return default_threads()
    n = int(num_threads)
    if n < 0:
        raise ValueError(f"num_threads must be >= 0 (0 or None = default), got {num_threads}")
    return n


def threads_for(work: int, n_threads: int) -> int:
    """Thread count for a kernel call doing `work` multiply-adds/element-ops."""
    return 1 if work < SERIAL_WORK else n_threads


def set_spin_us(us: int) -> int:
    """Microseconds the pool's idle workers spin after a job before they sleep
    (process-wide; 0 = sleep at once; FASTCNN_SPIN_US sets the default, 200).
    Returns the previous value."""
    try:
        from .._kernels import threadpool
    except ImportError:  # kernels not built: everything runs on the caller
        if int(us) < 0:
            raise ValueError(f"spin time must be >= 0 microseconds, got {us}")
        return 0
    return threadpool.set_spin_us(int(us))
