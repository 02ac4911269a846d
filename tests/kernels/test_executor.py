import numpy as np

from fastcnn._kernels.executor import Call, Program, as_call


def test_program_runs_python_steps_in_order():
    log = []
    prog = Program([lambda k=k: log.append(k) for k in range(5)])
    assert len(prog) == 5 and prog.n_native() == 0
    prog.run()
    prog.run()
    assert log == [0, 1, 2, 3, 4] * 2
    times = prog.run_profiled()
    assert len(times) == 5 and all(t >= 0 for t in times)


def test_as_call_passes_calls_through():
    c = as_call(lambda: None)
    assert isinstance(c, Call) and as_call(c) is c
