#!/usr/bin/env bash
# Build fastcnn's kernels with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# kernel and op tests against that build.
#
#   tools/sanitize.sh                    # kernel + op tests (default selection below)
#   tools/sanitize.sh tests/kernels -k dwconv      # any pytest arguments instead
#
# How it works
#   1. The source tree is copied (without build products) to $FASTCNN_SANITIZE_DIR
#      (default /tmp/fastcnn-sanitize), so the checkout's optimized build is untouched
#      and nobody else's in-place .so files are replaced.
#   2. There: FASTCNN_SANITIZE=1 python setup.py build_ext --inplace
#      (setup.py then compiles with -O1 -g -fno-omit-frame-pointer
#      -fsanitize=address,undefined and links the sanitizer runtimes).
#   3. Python itself is not instrumented, so the ASan runtime must be loaded first:
#      LD_PRELOAD=$(gcc -print-file-name=libasan.so) plus libstdc++ (libubsan comes in as
#      a dependency of the extensions).  detect_leaks=0: CPython's own allocations at exit are not ours.
#      PYTHONMALLOC=malloc so Python objects go through the instrumented malloc too.
#   4. pytest runs from the copy (so `import fastcnn` is the sanitized build).  ASan stops
#      the process at its first error; UBSan reports every finding and continues.  All
#      reports go to $FASTCNN_SANITIZE_DIR/reports/{asan,ubsan}.<pid>; the script prints
#      them and exits non-zero if there is any, or if pytest failed.
#
# Environment: CC (default gcc; clang works if its ASan runtime is used for LD_PRELOAD:
# set ASAN_LIB), FASTCNN_SANITIZE_DIR, ASAN_LIB, JOBS (parallel build jobs, default 2).
set -u -o pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="${FASTCNN_SANITIZE_DIR:-/tmp/fastcnn-sanitize}"
CC="${CC:-gcc}"
JOBS="${JOBS:-2}"
ASAN_LIB="${ASAN_LIB:-$($CC -print-file-name=libasan.so)}"
# libstdc++ must be preloaded too: python is not a C++ program, and without it ASan's
# __cxa_throw interceptor aborts ("real___cxa_throw != 0") the first time a C++
# extension (onnx's checker / reference evaluator) throws.
STDCXX_LIB="${STDCXX_LIB:-$($CC -print-file-name=libstdc++.so.6)}"
REPORTS="$DEST/reports"

if [ ! -e "$ASAN_LIB" ]; then
    echo "sanitize.sh: ASan runtime not found ($ASAN_LIB); set ASAN_LIB" >&2
    exit 2
fi

echo "== copying $SRC -> $DEST"
mkdir -p "$DEST"
if command -v rsync >/dev/null 2>&1; then
    rsync -a --delete --exclude .git --exclude build --exclude '*.so' --exclude '*.o' \
        --exclude '__pycache__' --exclude '.pytest_cache' --exclude '.hypothesis' \
        --exclude 'reports' "$SRC/" "$DEST/"
else
    # keep the sanitized .so files (and reports); everything else is copied afresh
    find "$DEST" -mindepth 1 -type f ! -name '*.so' ! -path "$DEST/reports/*" -delete
    (cd "$SRC" && tar cf - --exclude=.git --exclude=./build --exclude='*.so' --exclude='*.o' \
        --exclude=__pycache__ --exclude=.pytest_cache --exclude=.hypothesis .) |
        (cd "$DEST" && tar xf -)
fi
# Cython's generated .c files come along with their mtimes: cythonize regenerates a stale
# one, and a re-run with an unchanged tree rebuilds nothing (the sanitized .so files in
# $DEST are excluded from the copy and kept).

echo "== building with FASTCNN_SANITIZE=1 (CC=$CC)"
cd "$DEST" || exit 2
if ! CC="$CC" FASTCNN_SANITIZE=1 python setup.py -q build_ext --inplace -j "$JOBS" \
        > "$DEST/build.log" 2>&1; then
    tail -40 "$DEST/build.log"
    echo "sanitize.sh: build failed (full log: $DEST/build.log)" >&2
    exit 2
fi

if [ "$#" -eq 0 ]; then
    set -- tests/kernels tests/ops tests/test_conv_matrix.py tests/security/test_fuzz_kernels.py
fi

rm -rf "$REPORTS"
mkdir -p "$REPORTS"
echo "== pytest $* (ASan + UBSan; reports in $REPORTS)"
LD_PRELOAD="$ASAN_LIB:$STDCXX_LIB" \
ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:strict_string_checks=0:detect_stack_use_after_return=0:log_path=$REPORTS/asan" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0:log_path=$REPORTS/ubsan" \
PYTHONMALLOC=malloc \
PYTHONDONTWRITEBYTECODE=1 \
OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" \
    python -m pytest -p no:cacheprovider "$@"
rc=$?

# confirm the sanitized build was the one imported
LD_PRELOAD="$ASAN_LIB" ASAN_OPTIONS=detect_leaks=0 python - <<'EOF'
import fastcnn._kernels.executor as e, os
print("== imported kernels from", os.path.dirname(e.__file__))
EOF

n=$(find "$REPORTS" -type f | wc -l)
if [ "$n" -gt 0 ]; then
    echo "== $n sanitizer report file(s):"
    for f in "$REPORTS"/*; do
        echo "---- $f"
        head -60 "$f"
    done
    echo "== distinct findings:"
    grep -h -E "runtime error:|ERROR: AddressSanitizer" "$REPORTS"/* | sed -E 's/^[^ ]*: //' |
        sort | uniq -c | sort -rn | head -40
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    echo "== pytest failed (rc $rc) without sanitizer reports"
    exit "$rc"
fi
echo "== clean: no ASan/UBSan findings"
