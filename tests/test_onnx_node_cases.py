"""Conformance: the ONNX backend node test cases for every op fastcnn registers.

The onnx package ships the generators (`onnx.backend.test.case.node`), so no
data files are needed: each case has a model and (inputs, outputs) data sets.
A case runs when every op of its graph is registered (Constant is folded by
the importer), so ops added by any workstream are covered automatically.
Out-of-scope cases are listed with a reason in tests/node_case_skips.py.

    python -m tests.test_onnx_node_cases      # per-op passed/skipped/failed summary
"""
from __future__ import annotations

import functools
import os
import re
import sys
import warnings

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from node_case_skips import SKIPS  # noqa: E402

import fastcnn  # noqa: E402
from fastcnn.ops.registry import lookup  # noqa: E402

FLOAT_TOL = {np.dtype(np.float32): (1e-4, 1e-5), np.dtype(np.float64): (1e-4, 1e-5),
             np.dtype(np.float16): (1e-3, 1e-3)}


def _opset(model, domain=""):
    for o in model.opset_import:
        if (o.domain or "") in (domain, "ai.onnx" if domain == "" else domain):
            return o.version
    return 0


def _ops(model):
    return {(n.domain if n.domain not in ("ai.onnx",) else "", n.op_type)
            for n in model.graph.node if n.op_type != "Constant"}


@functools.lru_cache(maxsize=1)
def all_cases():
    from onnx.backend.test.case.node import collect_testcases
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return list(collect_testcases(None))


def primary_op(case, by_name):
    """The op a case tests: its single op, or (expanded function cases) its twin's op."""
    ops = {op for _, op in _ops(case.model)}
    base = re.sub(r"_expanded.*$", "", case.name)
    if base != case.name and base in by_name:
        return by_name[base]
    if len(ops) == 1:
        return next(iter(ops))
    return "+".join(sorted(ops)) or "Constant"


@functools.lru_cache(maxsize=1)
def selected_cases():
    """[(case, primary op)] for every case whose ops are all registered."""
    cases = all_cases()
    by_name = {}
    for c in cases:
        ops = {op for _, op in _ops(c.model)}
        if len(ops) == 1:
            by_name[c.name] = next(iter(ops))
    out = []
    for c in cases:
        if all(lookup(op, _opset(c.model, dom), dom) is not None for dom, op in _ops(c.model)):
            out.append((c, primary_op(c, by_name)))
    return out


def _array(x):
    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    return np.asarray(x)


def freeze_inputs(model, names, values):
    """A copy of the model with the named graph inputs turned into initializers.

    Node cases feed shape-deciding tensors (Reshape's shape, Slice's starts, Pad's
    pads, ...) as graph inputs; fastcnn plans shapes at load time and needs them
    constant -- as they are in exported models once shape plumbing is folded.
    """
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [i for i in m.graph.input if i.name not in names]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for n in names:
        m.graph.initializer.append(numpy_helper.from_array(values[n], n))
    return m


def _needs_constant(err):
    return isinstance(err, fastcnn.InvalidGraphError) and "must be a constant" in str(err)


def run_case(case):
    """Run every data set of the case through fastcnn; raise AssertionError on mismatch."""
    names = [i.name for i in case.model.graph.input
             if i.name not in {t.name for t in case.model.graph.initializer}]
    out_names = [o.name for o in case.model.graph.output]
    sess = None
    try:
        sess = fastcnn.InferenceSession(case.model, num_threads=1)
    except fastcnn.InvalidGraphError as e:
        if not _needs_constant(e):
            raise
    for k, (inputs, expected) in enumerate(case.data_sets):
        if len(inputs) != len(names):
            raise AssertionError(f"data set {k} has {len(inputs)} inputs, model takes {len(names)}")
        feeds = {n: _array(x) for n, x in zip(names, inputs)}
        run_sess = sess
        got = None
        if run_sess is not None:
            try:
                got = run_sess.run(out_names, feeds)
            except fastcnn.InvalidGraphError as e:
                if not _needs_constant(e):
                    raise
        if got is None:
            # freeze the integer inputs (shape plumbing), then also the scalar/1-D ones
            # (Range's float bounds, Dropout's ratio), and plan again
            for rule in (lambda v: v.dtype.kind in "iu", lambda v: v.ndim <= 1):
                frozen = [n for n in names if rule(feeds[n])]
                if not frozen:
                    continue
                try:
                    run_sess = fastcnn.InferenceSession(freeze_inputs(case.model, frozen, feeds),
                                                        num_threads=1)
                    got = run_sess.run(out_names, {n: v for n, v in feeds.items()
                                                   if n not in frozen})
                    break
                except fastcnn.InvalidGraphError as e:
                    if not _needs_constant(e):
                        raise
            if got is None:
                raise AssertionError("needs constant (shape-deciding) inputs that vary at run time")
        for name, g, e in zip(out_names, got, expected):
            e = _array(e)
            where = f"data set {k}, output '{name}'"
            assert g.shape == e.shape, f"{where}: shape {g.shape} != expected {e.shape}"
            assert g.dtype == e.dtype, f"{where}: dtype {g.dtype} != expected {e.dtype}"
            if e.dtype in FLOAT_TOL:
                rtol, atol = FLOAT_TOL[e.dtype]
                np.testing.assert_allclose(g, e, rtol=rtol, atol=atol, equal_nan=True,
                                           err_msg=where)
            else:
                np.testing.assert_array_equal(g, e, err_msg=where)


def _params():
    return [pytest.param(c, id=c.name) for c, _ in selected_cases()]


@pytest.mark.parametrize("case", _params())
def test_node_case(case):
    if case.name in SKIPS:
        pytest.skip(SKIPS[case.name])
    with np.errstate(all="ignore"):
        run_case(case)


#: older opsets the single-op cases are converted down to (onnx.version_converter), so the
#: attribute-vs-input forms (Slice/Clip/TopK < 10 and 11, Split/Squeeze/Unsqueeze/ReduceSum
#: < 13, Reduce*/Pad/Split < 18) run too
OLDER_OPSETS = (10, 12, 17)
#: the converter relabels Softmax-13 as -12 without rewriting the axis semantics
#: (single axis vs coerce-to-2D), so the converted model means something else
NOT_CONVERTIBLE = {"Softmax", "LogSoftmax", "Hardmax"}


def _older_params():
    out = []
    for c, op in selected_cases():
        if "_expanded" in c.name or op in NOT_CONVERTIBLE:
            continue
        v0 = _opset(c.model)
        for t in OLDER_OPSETS:
            if t < v0:
                out.append(pytest.param(c, t, id=f"{c.name}@opset{t}"))
    return out


@pytest.mark.parametrize("case,target", _older_params())
def test_node_case_older_opset(case, target):
    """The case's model converted down to `target` must give the same outputs."""
    if case.name in SKIPS:
        pytest.skip(SKIPS[case.name])
    from onnx import version_converter
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = version_converter.convert_version(case.model, target)
        onnx.checker.check_model(model)
    except Exception:
        pytest.skip("onnx.version_converter cannot express this case at that opset")
    older = type(case)(**{**case.__dict__, "model": model, "name": f"{case.name}@{target}"})
    with np.errstate(all="ignore"):
        run_case(older)


def test_skip_list_is_current():
    """Every skip names a real case (stale entries are removed, not accumulated)."""
    names = {c.name for c in all_cases()}
    stale = sorted(set(SKIPS) - names)
    assert not stale, f"skip entries for unknown cases: {stale}"


def summary(verbose=False):
    """{op: [passed, skipped, failed]} and the failures [(case, op, error)]."""
    counts, failures = {}, []
    for case, op in selected_cases():
        row = counts.setdefault(op, [0, 0, 0])
        if case.name in SKIPS:
            row[1] += 1
            continue
        try:
            with np.errstate(all="ignore"):
                run_case(case)
            row[0] += 1
        except Exception as e:  # noqa: BLE001 -- a report, not a test
            row[2] += 1
            msg = f"{type(e).__name__}: {e}".replace("\n", " ")
            failures.append((case.name, op, msg[:300]))
    return counts, failures


def older_summary():
    """{op: [passed, not convertible/skipped, failed]} over the down-converted cases."""
    from onnx import version_converter
    counts, failures = {}, []
    for p in _older_params():
        case, target = p.values
        op = dict((c.name, o) for c, o in selected_cases())[case.name]
        row = counts.setdefault(op, [0, 0, 0])
        if case.name in SKIPS:
            row[1] += 1
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = version_converter.convert_version(case.model, target)
            onnx.checker.check_model(model)
        except Exception:
            row[1] += 1
            continue
        try:
            with np.errstate(all="ignore"):
                run_case(type(case)(**{**case.__dict__, "model": model,
                                       "name": f"{case.name}@{target}"}))
            row[0] += 1
        except Exception as e:  # noqa: BLE001
            row[2] += 1
            failures.append((f"{case.name}@opset{target}", op, f"{type(e).__name__}: {e}"[:300]))
    return counts, failures


def main(argv=None):
    """Print passed/skipped/failed per op; `--older` also runs the down-converted cases;
    `--check-skips` lists skip entries whose case passes now."""
    argv = sys.argv[1:] if argv is None else argv
    counts, failures = summary()
    if "--check-skips" in argv:      # skip entries whose case now passes (e.g. fixed by its owner)
        now_pass = []
        for case, op in selected_cases():
            if case.name in SKIPS:
                try:
                    with np.errstate(all="ignore"):
                        run_case(case)
                    now_pass.append(case.name)
                except Exception:  # noqa: BLE001
                    pass
        print("Skipped cases that now pass (remove them from node_case_skips.py):",
              now_pass or "none")
    if "--older" in argv:
        older, older_failures = older_summary()
        print("Down-converted to opsets", OLDER_OPSETS, "(skipped = skip list or not convertible)")
        _print_table(older)
        failures += older_failures
        print()
    _print_table(counts)
    if failures:
        print("\nFailures:")
        for name, op, msg in failures:
            print(f"  {name} [{op}]: {msg}")
    return 1 if failures else 0


def _print_table(counts):
    tot = [0, 0, 0]
    print(f"{'op':32s} {'passed':>7s} {'skipped':>8s} {'failed':>7s}")
    for op in sorted(counts):
        p, s, f = counts[op]
        tot = [tot[0] + p, tot[1] + s, tot[2] + f]
        print(f"{op:32s} {p:7d} {s:8d} {f:7d}")
    print(f"{'TOTAL':32s} {tot[0]:7d} {tot[1]:8d} {tot[2]:7d}")


if __name__ == "__main__":
    sys.exit(main())
