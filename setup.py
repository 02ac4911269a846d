"""Build table for fastcnn's Cython kernels.

Every ``fastcnn/_kernels/*.pyx`` is one extension.  No OpenMP: parallel kernels run
on fastcnn's own thread pool (``threadpool.pyx``, POSIX threads).  The default build
is portable: no ``-march=native`` and no ``-ffast-math``.  SIMD micro-kernels carry
their own ``target`` attributes and are chosen at import by CPU feature detection.

Environment switches (all opt-in):
  FASTCNN_NATIVE=1     add -march=native (build for this CPU only)
  FASTCNN_SANITIZE=1   debug build with AddressSanitizer + UBSan
  FASTCNN_BUILD_ONLY=a,b  build only these kernel modules (developer speed-up)
"""
import glob
import os

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _env(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "False")


class BuildExt(build_ext):
    """Compiler flags for the compiler in use; extensions compile in parallel (one job
    per CPU): the SIMD kernels are big."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        cflags, ldflags = [], []
        if ctype == "msvc":
            cflags = ["/O2"]
        else:
            cflags = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wno-unused-function",
                      "-Wno-unreachable-code", "-pthread"]
            ldflags = ["-pthread"]
            if _env("FASTCNN_NATIVE"):
                cflags.append("-march=native")
            if _env("FASTCNN_SANITIZE"):
                cflags = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                          "-pthread"]
                ldflags.append("-fsanitize=address,undefined")
        for ext in self.extensions:
            ext.extra_compile_args = cflags + ext.extra_compile_args
            ext.extra_link_args = ldflags + ext.extra_link_args
        super().build_extensions()


def extensions():
    only = [s for s in os.environ.get("FASTCNN_BUILD_ONLY", "").split(",") if s]
    exts = []
    headers = sorted(glob.glob(os.path.join("fastcnn", "_kernels", "src", "*.h")))
    for pyx in sorted(glob.glob(os.path.join("fastcnn", "_kernels", "*.pyx"))):
        name = os.path.splitext(os.path.basename(pyx))[0]
        if only and name not in only:
            continue
        exts.append(Extension(
            "fastcnn._kernels." + name, [pyx],
            include_dirs=[numpy.get_include(), os.path.join("fastcnn", "_kernels", "src")],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            # the SIMD headers: editing one rebuilds the modules (not only .pyx edits do)
            depends=headers,
        ))
    return cythonize(
        exts, language_level=3, nthreads=0,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "initializedcheck": False, "embedsignature": True},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})
