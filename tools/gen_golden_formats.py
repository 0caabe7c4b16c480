#!/usr/bin/env python3
"""Golden files for strata's quantization formats, produced by the reference libraries.

Runs NVIDIA ModelOpt's export-path quantizers (and compressed-tensors for its conventions)
on CPU over adversarial and random inputs, and writes tests/golden/formats/*.golden, which
the C tests compare with strata's output byte for byte. CI never runs this script.

It installs nothing globally: the reference libraries go into a virtual environment under
build/tools-venv (created on first use). Usage:

    python3 tools/gen_golden_formats.py            # writes tests/golden/formats/
    python3 tools/gen_golden_formats.py --check    # regenerates in memory, compares

File layout (little-endian):
    8 bytes   magic b"STGOLD01"
    u32       length of the JSON header, then the header (format, convention, dtype, rows,
              cols, group_size, amax, case, sizes, library versions)
    input     rows*cols elements of dtype
    codes     canonical strata layout (see include/strata.h, strata_qtensor)
    scales    scale grid as stored
    zero      zero points (int8), asymmetric formats only
    global    f32 global scale (NVFP4), else absent
"""
import argparse
import json
import os
import struct
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "golden", "formats")
PACKAGES = ["torch", "nvidia-modelopt", "compressed-tensors", "requests"]


from golden_file import write_or_check  # noqa: E402
from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import torch  # noqa: E402
import modelopt  # noqa: E402
import compressed_tensors  # noqa: E402
from modelopt.torch.export.quant_utils import to_quantized_weight, pack_int4_in_uint8  # noqa: E402
from modelopt.torch.quantization.qtensor.nvfp4_tensor import NVFP4QTensor  # noqa: E402
from modelopt.torch.quantization.qtensor.mxfp4_tensor import MXFP4QTensor  # noqa: E402
from modelopt.torch.quantization.qtensor.mxfp8_tensor import MXFP8QTensor  # noqa: E402

FORMATS = ["fp8", "fp8-channel", "fp8-block", "nvfp4", "mxfp8", "mxfp4", "int8", "int4", "int4-asym"]
DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
VERSIONS = {"torch": torch.__version__, "nvidia-modelopt": modelopt.__version__,
            "compressed-tensors": compressed_tensors.__version__}


# ----------------------------------------------------------------------------- inputs

def adversarial(rows, cols, seed, dtype, block):
    """Random normal values with outliers, plus rows built to hit the format's edges:
    an all-zero row, zero blocks, denormals, huge values, and exact ties of the element
    grid when the block scale is 1."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    x[:, ::7] *= 8  # outliers
    if rows > 1:
        x[1] = 0  # an all-zero row
    if rows > 2 and cols >= block:
        x[2, :block] = 0  # a zero block
    if rows > 3:
        x[3] = torch.randn(cols, generator=g, dtype=torch.float64) * 1e-30  # underflow/denormal territory
    if rows > 4:
        x[4] = torch.randn(cols, generator=g, dtype=torch.float64) * 1e4  # large
    if rows > 5:
        ties = torch.tensor([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, -0.25, -0.75, -1.25, -1.75,
                             -2.5, -3.5, -5.0, -6.0, 0.1, -0.1, 0.0, -0.0, 1.0, 448.0, 464.0, -464.0,
                             0.5, 1.5, 2.0, 3.0, 4.0, -4.0, 127.5, -127.5], dtype=torch.float64)
        reps = (cols + len(ties) - 1) // len(ties)
        x[5] = ties.repeat(reps)[:cols]
    if rows > 6:
        # Exact e2m1 midpoints for NVFP4 when the global amax is 2688 and the block amax 6.
        pattern = torch.tensor([6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -0.75, -1.25,
                                -1.75, -2.5, -3.5, -5.0, 1.0], dtype=torch.float64)
        reps = (cols + 15) // 16
        x[6] = pattern.repeat(reps)[:cols]
        x[0, 0] = 2688.0
    return x.to(dtype)


# ----------------------------------------------------------------------------- references

def e4m3_bytes(t):
    return t.contiguous().view(torch.uint8)


def tile_amax(w, rows_per, cols_per):
    n, k = w.shape
    pn, pk = (-n) % rows_per, (-k) % cols_per
    p = torch.nn.functional.pad(w.float().abs(), (0, pk, 0, pn))
    return p.view((n + pn) // rows_per, rows_per, (k + pk) // cols_per, cols_per).amax(dim=(1, 3))


def nonzero_or_one(s):
    return torch.where(s == 0, torch.ones_like(s), s)


def ref_fp8(w, amax):
    a = torch.tensor(amax, dtype=torch.float32) if amax else w.float().abs().max()
    scale = nonzero_or_one(a / 448.0)
    q = to_quantized_weight(w, scale, "fp8")
    return e4m3_bytes(q).numpy().tobytes(), scale.reshape(1).numpy().tobytes(), b"", None


def ref_fp8_channel(w, amax):
    scale = nonzero_or_one(w.float().abs().amax(dim=1) / 448.0)
    q = to_quantized_weight(w, scale, "fp8_pc_pt")
    return e4m3_bytes(q).numpy().tobytes(), scale.numpy().tobytes(), b"", None


def ref_fp8_block(w, amax):
    scale = nonzero_or_one(tile_amax(w, 128, 128) / 448.0)
    q = to_quantized_weight(w, scale, "fp8_pb_wo", block_size=128)
    return e4m3_bytes(q).numpy().tobytes(), scale.contiguous().numpy().tobytes(), b"", None


def ref_nvfp4(w, amax):
    wsf2 = None
    if amax:
        wsf2 = torch.tensor(amax, dtype=torch.float32) / (6.0 * 448.0)
    qt, ws, wsf2 = NVFP4QTensor.quantize(w, 16, None, wsf2)
    return (qt._quantized_data.contiguous().numpy().tobytes(), e4m3_bytes(ws).numpy().tobytes(), b"",
            float(wsf2))


def ref_mxfp8(w, amax):
    scale = MXFP8QTensor.get_weights_scaling_factor(w)
    q = MXFP8QTensor.quantize_with_scale(w, scale)
    return e4m3_bytes(q).numpy().tobytes(), scale.contiguous().numpy().tobytes(), b"", None


def ref_mxfp4(w, amax):
    qt, scale = MXFP4QTensor.quantize(w, block_size=32)
    n = w.shape[0]
    return (qt._quantized_data.contiguous().numpy().tobytes(), scale.reshape(n, -1).contiguous().numpy().tobytes(),
            b"", None)


def ref_int8(w, amax):
    scale = nonzero_or_one(w.float().abs().amax(dim=1) / 127.0)
    q = to_quantized_weight(w.float(), scale, "int8_wo")
    return q.view(torch.uint8).contiguous().numpy().tobytes(), scale.numpy().tobytes(), b"", None


def ref_int4(w, amax, group=128):
    n, k = w.shape
    scale = nonzero_or_one(w.float().abs().view(n, k // group, group).amax(dim=-1) / 7.0)
    packed = pack_int4_in_uint8(w, scale, group)  # two rows per byte, two's complement nibbles
    lo = (packed & 0xF).to(torch.int16)
    hi = ((packed >> 4) & 0xF).to(torch.int16)
    q = torch.empty(n, k, dtype=torch.int16)
    q[0::2], q[1::2] = lo, hi  # back to (rows, cols) nibbles
    canon = (q[:, 0::2] | (q[:, 1::2] << 4)).to(torch.uint8)  # strata: along the row, low nibble even
    return canon.contiguous().numpy().tobytes(), scale.numpy().tobytes(), b"", None


def ref_int4_asym(w, amax, group=128):
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import quantize
    from compressed_tensors.quantization.utils.helpers import calculate_qparams
    n, k = w.shape
    args = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=group)
    grouped = w.view(n, k // group, group)
    scale, zp = calculate_qparams(grouped.amin(dim=-1), grouped.amax(dim=-1), args)
    q = quantize(w, scale, zp, args, dtype=torch.int8).to(torch.int16)
    canon = ((q[:, 0::2] & 0xF) | ((q[:, 1::2] & 0xF) << 4)).to(torch.uint8)
    return (canon.contiguous().numpy().tobytes(), scale.float().contiguous().numpy().tobytes(),
            zp.to(torch.int8).contiguous().numpy().tobytes(), None)


def ref_nvfp4_ct(w, amax):
    """compressed-tensors' NVFP4 (tensor_group): global scale, group scales, then elements,
    as llm-compressor's static min/max observers feed them."""
    from compressed_tensors.compressors.nvfp4.helpers import pack_fp4_to_uint8
    from compressed_tensors.quantization import QuantizationArgs
    from compressed_tensors.quantization.lifecycle.forward import quantize
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam
    n, k = w.shape
    args = QuantizationArgs(num_bits=4, type="float", strategy="tensor_group", symmetric=True, group_size=16,
                            scale_dtype=torch.float8_e4m3fn, zp_dtype=torch.float8_e4m3fn)
    gs = generate_gparam(w.min(), w.max())
    grouped = w.view(n, k // 16, 16)
    scale, zp = calculate_qparams(grouped.amin(dim=-1), grouped.amax(dim=-1), args, global_scale=gs)
    q = quantize(w, scale, zp, args, global_scale=gs)
    packed = pack_fp4_to_uint8(q)
    return (packed.contiguous().numpy().tobytes(), scale.to(torch.float8_e4m3fn).view(torch.uint8).numpy().tobytes(),
            b"", float(gs))


def ref_ct_symmetric(kind, strategy, group=None):
    """compressed-tensors symmetric int8 / int4 / fp8 (calculate_qparams, then quantize)."""
    def run(w, amax):
        from compressed_tensors.quantization import QuantizationArgs
        from compressed_tensors.quantization.lifecycle.forward import quantize
        from compressed_tensors.quantization.utils.helpers import calculate_qparams
        n, k = w.shape
        bits, qtype = {"int8": (8, "int"), "int4": (4, "int"), "fp8": (8, "float")}[kind]
        args = QuantizationArgs(num_bits=bits, type=qtype, symmetric=True, strategy=strategy, group_size=group)
        if strategy == "tensor":
            lo, hi = w.min().reshape(1), w.max().reshape(1)
        elif strategy == "channel":
            lo, hi = w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
        else:
            grouped = w.view(n, k // group, group)
            lo, hi = grouped.amin(dim=-1), grouped.amax(dim=-1)
        scale, zp = calculate_qparams(lo, hi, args)
        if kind == "fp8":
            q = quantize(w, scale, zp, args, dtype=torch.float8_e4m3fn)
            codes = q.view(torch.uint8).contiguous().numpy().tobytes()
        else:
            q = quantize(w, scale, zp, args, dtype=torch.int8)
            if kind == "int8":
                codes = q.view(torch.uint8).contiguous().numpy().tobytes()
            else:
                q = q.to(torch.int16)
                codes = ((q[:, 0::2] & 0xF) | ((q[:, 1::2] & 0xF) << 4)).to(torch.uint8).contiguous().numpy().tobytes()
        return codes, scale.float().contiguous().numpy().tobytes(), b"", None
    return run


def ref_mx_ct(bits):
    """compressed-tensors MXFP4 / MXFP8 (group 32, uint8 E8M0 scales)."""
    def run(w, amax):
        from compressed_tensors.compressors.nvfp4.helpers import pack_fp4_to_uint8
        from compressed_tensors.quantization import QuantizationArgs
        from compressed_tensors.quantization.lifecycle.forward import quantize
        from compressed_tensors.quantization.utils.helpers import calculate_qparams
        n, k = w.shape
        args = QuantizationArgs(num_bits=bits, type="float", strategy="group", symmetric=True, group_size=32,
                                scale_dtype=torch.uint8, zp_dtype=torch.uint8)
        grouped = w.view(n, k // 32, 32)
        scale, zp = calculate_qparams(grouped.amin(dim=-1), grouped.amax(dim=-1), args)
        exponent = (127 + torch.log2(scale.float())).round().to(torch.uint8)
        if bits == 4:
            codes = pack_fp4_to_uint8(quantize(w, scale, zp, args)).contiguous().numpy().tobytes()
        else:
            codes = quantize(w, scale, zp, args, dtype=torch.float8_e4m3fn).view(torch.uint8).numpy().tobytes()
        return codes, exponent.contiguous().numpy().tobytes(), b"", None
    return run


REFERENCES = {"fp8": ref_fp8, "fp8-channel": ref_fp8_channel, "fp8-block": ref_fp8_block, "nvfp4": ref_nvfp4,
              "mxfp8": ref_mxfp8, "mxfp4": ref_mxfp4, "int8": ref_int8, "int4": ref_int4, "int4-asym": ref_int4_asym, "nvfp4-ct": ref_nvfp4_ct,
              "int8-ct": ref_ct_symmetric("int8", "channel"), "int4-ct": ref_ct_symmetric("int4", "group", 128),
              "fp8-ct": ref_ct_symmetric("fp8", "tensor"), "fp8-channel-ct": ref_ct_symmetric("fp8", "channel"),
              "mxfp4-ct": ref_mx_ct(4), "mxfp8-ct": ref_mx_ct(8)}

# (case name, format, dtype, rows, cols, seed, calibrated amax)
CASES = [
    ("fp8_bf16", "fp8", "BF16", 48, 96, 1, 0.0),
    ("fp8_f32", "fp8", "F32", 48, 96, 2, 0.0),
    ("fp8_f16", "fp8", "F16", 16, 64, 3, 0.0),
    ("fp8_calibrated_bf16", "fp8", "BF16", 16, 64, 4, 3.0),
    ("fp8_channel_bf16", "fp8-channel", "BF16", 48, 96, 5, 0.0),
    ("fp8_block_bf16", "fp8-block", "BF16", 136, 200, 6, 0.0),
    ("nvfp4_bf16", "nvfp4", "BF16", 48, 96, 7, 0.0),
    ("nvfp4_f32", "nvfp4", "F32", 48, 96, 8, 0.0),
    ("nvfp4_cols40_bf16", "nvfp4", "BF16", 16, 40, 9, 0.0),
    ("nvfp4_calibrated_bf16", "nvfp4", "BF16", 16, 64, 10, 100.0),
    ("mxfp8_bf16", "mxfp8", "BF16", 48, 96, 11, 0.0),
    ("mxfp4_bf16", "mxfp4", "BF16", 48, 96, 12, 0.0),
    ("mxfp4_f32", "mxfp4", "F32", 16, 64, 13, 0.0),
    ("int8_bf16", "int8", "BF16", 48, 96, 14, 0.0),
    ("int4_bf16", "int4", "BF16", 32, 256, 15, 0.0),
    ("int4_asym_f32", "int4-asym", "F32", 32, 256, 16, 0.0),
    ("nvfp4_ct_bf16", "nvfp4-ct", "BF16", 48, 96, 17, 0.0),
    ("nvfp4_ct_f32", "nvfp4-ct", "F32", 48, 96, 18, 0.0),
    ("int8_ct_bf16", "int8-ct", "BF16", 48, 96, 19, 0.0),
    ("int4_ct_bf16", "int4-ct", "BF16", 32, 256, 20, 0.0),
    ("fp8_ct_bf16", "fp8-ct", "BF16", 48, 96, 21, 0.0),
    ("fp8_channel_ct_bf16", "fp8-channel-ct", "BF16", 48, 96, 22, 0.0),
    ("int8_ct_f32", "int8-ct", "F32", 16, 64, 23, 0.0),
    ("int4_asym_bf16", "int4-asym", "BF16", 32, 256, 24, 0.0),
    ("mxfp4_ct_bf16", "mxfp4-ct", "BF16", 48, 96, 25, 0.0),
    ("mxfp8_ct_bf16", "mxfp8-ct", "BF16", 48, 96, 26, 0.0),
]


def golden_bytes(case):
    name, fmt, dtype, rows, cols, seed, amax = case
    block = {"nvfp4": 16, "nvfp4-ct": 16, "int4-ct": 128, "mxfp4-ct": 32, "mxfp8-ct": 32, "mxfp8": 32, "mxfp4": 32, "int4": 128, "int4-asym": 128, "fp8-block": 128}.get(fmt, cols)
    w = adversarial(rows, cols, seed, DTYPES[dtype], block)
    codes, scales, zero, global_scale = REFERENCES[fmt](w, amax)
    convention = "compressed-tensors" if fmt == "int4-asym" or fmt.endswith("-ct") else "modelopt"
    header = {"case": name, "format": fmt.replace("-ct", ""), "convention": convention,
              "dtype": dtype, "rows": rows, "cols": cols, "group_size": 128 if fmt.startswith("int4") else 0,
              "amax": amax, "code_bytes": len(codes), "scale_bytes": len(scales), "zero_point_bytes": len(zero),
              "has_global": global_scale is not None, "versions": VERSIONS}
    text = json.dumps(header, sort_keys=True).encode()
    out = bytearray(b"STGOLD01") + struct.pack("<I", len(text)) + text
    out += w.contiguous().view(torch.uint8).numpy().tobytes() if dtype != "F32" else w.numpy().tobytes()
    out += codes + scales + zero
    if global_scale is not None:
        out += struct.pack("<f", global_scale)
    return bytes(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    different = 0
    for case in CASES:
        data = golden_bytes(case)
        path = os.path.join(OUT, case[0] + ".golden")
        different += not write_or_check(path, data, args.check)
    print("versions:", json.dumps(VERSIONS))
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
