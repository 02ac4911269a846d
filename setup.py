"""Build table for fastcnn's Cython kernels.

Every ``fastcnn/_kernels/*.pyx`` is one extension.  OpenMP is detected per
compiler; without it the kernels build serially (with a visible warning) and
still pass the tests.  The default build is portable: no ``-march=native`` and
no ``-ffast-math``.  SIMD micro-kernels carry their own ``target`` attributes
and are chosen at import by CPU feature detection.

Environment switches (all opt-in):
  FASTCNN_NATIVE=1     add -march=native (build for this CPU only)
  FASTCNN_NO_OPENMP=1  build without OpenMP
  FASTCNN_SANITIZE=1   debug build with AddressSanitizer + UBSan
  FASTCNN_BUILD_ONLY=a,b  build only these kernel modules (developer speed-up)
"""
import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _env(name):
    return os.environ.get(name, "").strip() not in ("", "0", "false", "False")


def _try_compile(compiler, cflags, ldflags):
    """True when a tiny OpenMP program compiles and links with these flags."""
    src = "#include <omp.h>\nint main(void){int n=0;\n#pragma omp parallel\n{n=omp_get_num_threads();}\nreturn n<1;}\n"
    tmp = tempfile.mkdtemp()
    try:
        path = os.path.join(tmp, "t.c")
        with open(path, "w") as f:
            f.write(src)
        objs = compiler.compile([path], output_dir=tmp, extra_postargs=cflags)
        compiler.link_executable(objs, os.path.join(tmp, "t"), extra_postargs=ldflags)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    """Adds OpenMP flags for the compiler in use, or warns and builds serially.
    Extensions compile in parallel (one job per CPU): the SIMD kernels are big."""

    def finalize_options(self):
        super().finalize_options()
        if not self.parallel:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        cflags, ldflags = [], []
        if ctype == "msvc":
            base = ["/O2"]
            omp = (["/openmp"], [])
        else:
            base = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-Wno-unused-function",
                    "-Wno-unreachable-code"]
            if sys.platform == "darwin":
                omp = (["-Xpreprocessor", "-fopenmp"], ["-lomp"])
            else:
                omp = (["-fopenmp"], ["-fopenmp"])
            if _env("FASTCNN_NATIVE"):
                base.append("-march=native")
            if _env("FASTCNN_SANITIZE"):
                base = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined"]
                ldflags.append("-fsanitize=address,undefined")
        if ctype != "msvc":
            base.append("-pthread")  # the thread pool (threadpool.h)
            ldflags.append("-pthread")
        cflags += base
        use_omp = False
        if not _env("FASTCNN_NO_OPENMP"):
            use_omp = ctype == "msvc" or _try_compile(self.compiler, omp[0], omp[1])
            if not use_omp:
                warnings.warn("fastcnn: OpenMP not available for this compiler; "
                              "building SERIAL kernels (correct, but single-threaded).")
                print("*** fastcnn: building WITHOUT OpenMP ***", file=sys.stderr)
        if use_omp:
            cflags += omp[0]
            ldflags += omp[1]
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
