"""Per-op summary of the ONNX backend node cases: passed / skipped / failed.

    python tools/node_case_report.py            # the cases at their own opset
    python tools/node_case_report.py --older    # also down-converted to opsets 10, 12, 17
    python tools/node_case_report.py --check-skips   # skip entries that pass now
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from test_onnx_node_cases import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
