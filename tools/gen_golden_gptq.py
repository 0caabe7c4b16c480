#!/usr/bin/env python3
"""Golden results for strata's GPTQ, produced by llm-compressor's GPTQ on the same H and W.

Builds one small weight W (32, 128) and one Hessian H = 2/n X^T X from 512 synthetic
activation rows whose columns have very different scales (and one dead column), computes
each case's scales with compressed-tensors (as llm-compressor's min/max observer feeds
them), runs llmcompressor.modifiers.gptq.gptq_quantize.quantize_weight, and writes
tests/golden/gptq/gptq.safetensors: "weight", "hessian", and per case "<case>.result"
(the quantized weight llm-compressor returns), with the case settings and library
versions in the metadata. The C test (tests/unit/test_gptq.c) runs strata's GPTQ with
the compressed-tensors convention on the same inputs and compares. CI never runs this.

    python3 tools/gen_golden_gptq.py            # writes tests/golden/gptq/gptq.safetensors
    python3 tools/gen_golden_gptq.py --check    # regenerates in memory, compares
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "gptq", "gptq.safetensors")
PACKAGES = ["torch", "compressed-tensors", "llmcompressor", "safetensors"]

from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import torch  # noqa: E402
import compressed_tensors  # noqa: E402
import llmcompressor  # noqa: E402
from safetensors.torch import save, load  # noqa: E402
from compressed_tensors.quantization import QuantizationArgs  # noqa: E402
from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam  # noqa: E402
from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight  # noqa: E402

ROWS, COLS, TOKENS, DEAD = 32, 128, 512, 5
VERSIONS = {"torch": torch.__version__, "compressed-tensors": compressed_tensors.__version__,
            "llmcompressor": llmcompressor.__version__}

# name: (strata format, QuantizationArgs keywords, group, actorder, block)
CASES = {
    "int4_g32": ("int4", dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=32), 32, None, 128),
    "int4_asym_g32": ("int4-asym", dict(num_bits=4, type="int", symmetric=False, strategy="group", group_size=32),
                      32, None, 128),
    "int4_g32_block32": ("int4", dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=32), 32,
                         None, 32),
    "int4_g32_actorder": ("int4", dict(num_bits=4, type="int", symmetric=True, strategy="group", group_size=32), 32,
                          "weight", 128),
    "int8_channel": ("int8", dict(num_bits=8, type="int", symmetric=True, strategy="channel"), 0, None, 128),
    "fp8_tensor": ("fp8", dict(num_bits=8, type="float", symmetric=True, strategy="tensor"), 0, None, 128),
    "fp8_channel": ("fp8-channel", dict(num_bits=8, type="float", symmetric=True, strategy="channel"), 0, None, 64),
    "nvfp4": ("nvfp4", dict(num_bits=4, type="float", symmetric=True, strategy="tensor_group", group_size=16,
                            scale_dtype=torch.float8_e4m3fn, zp_dtype=torch.float8_e4m3fn), 16, None, 128),
    "mxfp4": ("mxfp4", dict(num_bits=4, type="float", symmetric=True, strategy="group", group_size=32,
                            scale_dtype=torch.uint8, zp_dtype=torch.uint8), 32, None, 128),
}


def inputs():
    g = torch.Generator().manual_seed(7)
    w = torch.randn(ROWS, COLS, generator=g) * 0.05
    w[3, 17] = 0.6  # an outlier that owns its group's scale
    column_scale = torch.exp(torch.randn(COLS, generator=g))
    x = torch.randn(TOKENS, COLS, generator=g) * column_scale
    x[:, 40:44] += x[:, 44:45]  # correlated columns
    x[:, DEAD] = 0
    x = x.to(torch.bfloat16).float()  # what a bf16 forward pass feeds the Hessian
    h = (2.0 / TOKENS) * (x.t() @ x)
    return w.contiguous(), h.contiguous()


def qparams(w, args):
    n, k = w.shape
    strategy = args.strategy.value if hasattr(args.strategy, "value") else args.strategy
    global_scale = None
    if strategy == "tensor":
        lo, hi = w.min().reshape(1), w.max().reshape(1)
    elif strategy == "channel":
        lo, hi = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
    else:
        grouped = w.view(n, k // args.group_size, args.group_size)
        lo, hi = grouped.amin(dim=-1), grouped.amax(dim=-1)
    if strategy == "tensor_group":
        global_scale = generate_gparam(w.min(), w.max())
    scale, zp = calculate_qparams(lo, hi, args, global_scale=global_scale)
    return scale.float(), zp, global_scale


def run_case(w, h, spec):
    _, kwargs, _, actorder, block = spec
    args = QuantizationArgs(**kwargs, actorder=actorder)
    scale, zp, gs = qparams(w, args)
    result, _, fallback = quantize_weight(w.clone()[None], h.clone()[None], scale[None], zp[None],
                                          None if gs is None else gs.reshape(1), args, blocksize=block,
                                          percdamp=0.01)
    assert not bool(fallback[0]), "llm-compressor fell back to round-to-nearest"
    return result[0].contiguous()


def golden():
    torch.set_num_threads(1)
    w, h = inputs()
    tensors = {"weight": w, "hessian": h}
    cases = {}
    for name, spec in CASES.items():
        tensors[name + ".result"] = run_case(w, h, spec)
        fmt, _, group, actorder, block = spec
        cases[name] = {"format": fmt, "group_size": group, "act_order": actorder is not None, "block": block,
                       "damp": 0.01}
    metadata = {"cases": json.dumps(cases, sort_keys=True), "versions": json.dumps(VERSIONS, sort_keys=True),
                "tokens": str(TOKENS), "dead_column": str(DEAD)}
    return save(tensors, metadata=metadata)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args()
    data = golden()
    if args.check:
        old = load(open(OUT, "rb").read())
        new = load(data)
        same = old.keys() == new.keys() and all(torch.equal(old[k], new[k]) for k in old)
        print("same" if same else "DIFFERENT", OUT)
        return 0 if same else 1
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT + ".tmp", "wb") as f:
        f.write(data)
    os.replace(OUT + ".tmp", OUT)
    print(f"wrote {OUT} ({len(data)} bytes); versions {json.dumps(VERSIONS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
