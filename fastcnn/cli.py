"""Command-line front end: `fastcnn run|info|bench|demo`.  No logic of its own."""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fastcnn", description="Run and analyse ONNX CNNs on the CPU.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a model on given or random inputs")
    r.add_argument("model")
    r.add_argument("--input", action="append", default=[], metavar="NAME=FILE.npy")
    r.add_argument("--shape", action="append", default=[], metavar="NAME=1x3x224x224",
                   help="shape for inputs with symbolic dims (random inputs)")
    r.add_argument("--output", metavar="OUT.npz")
    r.add_argument("--threads", type=int, default=None)

    d = sub.add_parser("demo", help="classify the bundled 8x8 digit samples with the bundled CNN")
    d.add_argument("--threads", type=int, default=None)

    i = sub.add_parser("info", help="per-layer shapes, receptive fields, FLOPs, params, lint")
    i.add_argument("model")
    i.add_argument("--shape", action="append", default=[], metavar="NAME=1x3x224x224")
    i.add_argument("--optimized", action="store_true", help="analyse the optimized graph")
    i.add_argument("--json", action="store_true")
    i.add_argument("--plot", metavar="OUT.png")

    b = sub.add_parser("bench", help="latency/throughput, per-op profile, % of peak, vs onnxruntime")
    b.add_argument("model")
    b.add_argument("--shape", action="append", default=[], metavar="NAME=1x3x224x224")
    b.add_argument("--threads", default="1", help="comma list, e.g. 1,2")
    b.add_argument("--batch", default="1", help="comma list, e.g. 1,8")
    b.add_argument("--warmup", type=int, default=5)
    g = b.add_mutually_exclusive_group()
    g.add_argument("--runs", type=int, default=None)
    g.add_argument("--time", type=float, default=None, help="seconds per configuration")
    b.add_argument("--compare", default=None, metavar="RUNTIMES",
                   help="onnxruntime, openvino, or both: onnxruntime,openvino")
    b.add_argument("--profile", action="store_true")
    b.add_argument("--json", action="store_true")
    b.add_argument("--plot", metavar="OUT.png")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from .errors import FastCNNError
    try:
        if args.command == "run":
            from .commands import run_command as cmd
        elif args.command == "demo":
            from .commands import demo_command as cmd
        elif args.command == "info":
            from .analysis import info_command as cmd
        else:
            from .benchmark import bench_command as cmd
        return int(cmd(args) or 0)
    except (FastCNNError, OSError, ValueError) as e:
        print(f"fastcnn {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
