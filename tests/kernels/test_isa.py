"""Every kernel module's set_isa follows one rule (fastcnn/_kernels/isa.py): 'auto' is the
CPU's level, 'portable' always works, an unknown name raises ValueError naming the known
ones, and the previous name comes back so a test can restore it."""
import importlib

import pytest

from fastcnn._kernels.isa import choose

MODULES = ["conv_nchwc", "deconv", "dwconv_nchwc", "gemm", "local_conv", "pool", "resize"]


def test_choose():
    levels = {"portable": 0, "avx2": 1, "avx512": 2}
    assert choose("auto", levels, 1) == 1
    assert choose("avx2", levels, 1) == 1
    with pytest.raises(ValueError, match="not supported"):
        choose("avx512", levels, 1)
    with pytest.raises(ValueError, match="expected one of"):
        choose("sse9", levels, 2)


@pytest.mark.parametrize("name", MODULES)
def test_modules_set_isa(name):
    m = pytest.importorskip(f"fastcnn._kernels.{name}")
    prev = m.set_isa("portable")
    try:
        assert m.set_isa("auto") == "portable"
        with pytest.raises(ValueError, match="expected one of"):
            m.set_isa("sse9")
    finally:
        m.set_isa(prev)
