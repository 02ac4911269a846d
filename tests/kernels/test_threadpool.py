"""The thread pool every parallel kernel runs on (fastcnn/_kernels/threadpool.pyx):
every item exactly once, for any thread and item count, from several Python threads at
once, after fork, and with the spin setting validated."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

tp = pytest.importorskip("fastcnn._kernels.threadpool")


def expected(n, per):
    i = np.arange(n, dtype=np.float64)[:, None]
    return (i * per + np.arange(per)[None, :]).sum(axis=1)


@pytest.mark.parametrize("n_threads", [1, 2, 3, 8])
@pytest.mark.parametrize("n_items", [0, 1, 2, 5, 64, 1001])
def test_every_item_once(n_threads, n_items):
    out = tp._selftest(n_threads, n_items, 50)
    np.testing.assert_array_equal(out, expected(n_items, 50))


def test_many_jobs_back_to_back():
    """Generations follow each other fast: a worker still finishing one job's claims
    must never take items of the next."""
    for k in range(2000):
        n = 1 + k % 37
        np.testing.assert_array_equal(tp._selftest(2, n, 3), expected(n, 3))


def test_concurrent_callers():
    """Two Python threads use the pool at once (one runs on the workers, the other runs
    its job serially): both get every item."""
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(300):
            n = int(rng.integers(1, 200))
            got = tp._selftest(2, n, 20)
            if not np.array_equal(got, expected(n, 20)):
                errors.append((seed, n))

    ts = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors


def test_after_fork():
    """A forked child has none of the parent's worker threads; the pool starts new ones
    instead of waiting for threads that do not exist there."""
    tp._selftest(2, 100, 10)   # workers exist in the parent
    code = ("import numpy as np; from fastcnn._kernels import threadpool as tp; import os\n"
            "tp._selftest(2, 10, 10)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    out = tp._selftest(2, 500, 10)\n"
            "    ok = np.array_equal(out, [sum(range(i * 10, i * 10 + 10)) for i in range(500)])\n"
            "    os._exit(0 if ok else 3)\n"
            "_, st = os.waitpid(pid, 0)\n"
            "print(os.waitstatus_to_exitcode(st))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_spin_setting():
    prev = tp.set_spin_us(50)
    try:
        assert tp.spin_us() == 50
        with pytest.raises(ValueError, match="spin"):
            tp.set_spin_us(-1)
        assert tp.spin_us() == 50
        np.testing.assert_array_equal(tp._selftest(2, 40, 5), expected(40, 5))
    finally:
        tp.set_spin_us(prev)
    assert tp.spin_us() == prev


@pytest.mark.parametrize("schedule", ["home", "guided"])
@pytest.mark.parametrize("n_threads", [2, 3])
def test_schedules(schedule, n_threads):
    """Both ways of sharing items (home ranges with stealing, one guided counter) run
    every item once; the setting is validated and restored."""
    prev = tp.set_schedule(schedule)
    try:
        for n in (1, 2, 3, 7, 64, 1001, (1 << 20) + 3):      # the last: over a range word
            per = 50 if n < 5000 else 1
            np.testing.assert_array_equal(tp._selftest(n_threads, n, per), expected(n, per))
    finally:
        tp.set_schedule(prev)
    with pytest.raises(ValueError):
        tp.set_schedule("static")
