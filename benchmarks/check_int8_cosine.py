"""Worst cosine between ONNX int8 and bf16 item vectors over a whole catalogue (bf16 is within 0.9999 of fp32).

    python benchmarks/check_int8_cosine.py --data amazon-beauty --data-dir ../shared/data --threads 1

The bf16 vectors come from the vector cache when present (else they are encoded first); the int8 ones
are encoded into an empty cache, timed.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np
import torch

from arborec.data import load_prepared
from arborec.text import TextEncoder, encode_items


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="amazon-beauty")
    parser.add_argument("--data-dir")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_prepared(args.data, data_dir=args.data_dir)
    ref = encode_items(data.catalog, TextEncoder(backend="torch-bf16"))
    with tempfile.TemporaryDirectory() as empty:
        t0 = time.perf_counter()
        vec = encode_items(data.catalog, TextEncoder(backend="onnx-int8", threads=args.threads), cache_dir=empty)
        seconds = time.perf_counter() - t0
    cos = (vec * ref).sum(1)
    print(f"{args.data}: {len(vec):,} items, onnx-int8 {len(vec) / seconds:.0f} items/s ({args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}); cosine with bf16: min {cos.min():.4f}, 1st percentile "
          f"{np.percentile(cos, 1):.4f}, mean {cos.mean():.4f}, items below 0.99: {(cos < 0.99).sum()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
