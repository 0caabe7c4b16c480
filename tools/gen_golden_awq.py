#!/usr/bin/env python3
"""Golden files of NVIDIA ModelOpt's AWQ (awq_lite) on llama-19m and qwen3moe-47m, for `strata quantize --algo awq`.

ModelOpt 0.47 quantizes ../shared/models/<model> (bf16) on CPU with its own configs,
INT4_AWQ_CFG and NVFP4_AWQ_LITE_CFG, fed the calibration windows of
tests/golden/e2e/calib-ids.json one window per forward (what `strata quantize --calib
calib-ids.json --calib-format ids --calib-samples 16 --calib-seq 128` reads), and exports with
`export_hf_checkpoint`. Recorded (tests/golden/awq/<model>/<case>.json):

    linears   per linear the a awq_lite chose and its 11 losses (sum over the windows of the
              mean squared output error), read from ModelOpt's own helper as it finishes
    tensors   per exported tensor its dtype, shape and SHA-256; for the 1-D BF16 ones (the
              norms AWQ's scales are folded into, the pre_quant_scale tensors) every value, as
              bf16 bit patterns in hex ("bf16")
    hf_quant_config, quantization_config   as written (versions -> "*")

tests/unit/test_awq_golden.c compares strata's output of the same windows with them.

qwen3moe-47m (a mixture-of-experts model) runs with transformers 4.57 (build/modelopt-tf4-venv,
torch and ModelOpt from build/tools-venv): its MoE blocks hold one nn.Linear per expert, which
ModelOpt calibrates expert by expert on the tokens routed to each and exports with AWQ;
transformers 5's fused experts it cannot export with AWQ. Experts no window reached have no
entry under "linears" (ModelOpt gives them pre_quant_scale 1 without a search).

ModelOpt's NVFP4 fake quantization needs CUDA (its dynamic block kernel asserts a CUDA
amax); on CPU the NVFP4 case replaces that kernel with ModelOpt's own NVFP4QTensor
quantize/dequantize (the exporter's numerics), everything else being ModelOpt's code.
CI never runs this script.

Usage:
    python3 tools/gen_golden_awq.py                    # both cases of llama-19m
    python3 tools/gen_golden_awq.py --model qwen3moe-47m
    python3 tools/gen_golden_awq.py --case int4 --keep build/awq-golden
    python3 tools/gen_golden_awq.py --check            # regenerate in memory and compare
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODELS = ["llama-19m", "qwen3moe-47m"]
IDS = os.path.join(ROOT, "tests", "golden", "e2e", "calib-ids.json")
CASES = {"int4": "INT4_AWQ_CFG", "nvfp4": "NVFP4_AWQ_LITE_CFG"}
WINDOW = 128
PACKAGES = ["torch", "transformers", "nvidia-modelopt", "safetensors"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_file import dumps_record, in_export_dir, tensor_records, wildcard_versions, write_or_check  # noqa: E402
from tools_venv import ensure_transformers4_venv, ensure_venv  # noqa: E402


def model_argument():
    """--model before the venv is chosen: the MoE model needs transformers 4."""
    for i, arg in enumerate(sys.argv):
        if arg == "--model" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--model="):
            return arg.split("=", 1)[1]
    return MODELS[0]


if model_argument() == "qwen3moe-47m":
    ensure_transformers4_venv(PACKAGES)
else:
    ensure_venv(PACKAGES)

import torch  # noqa: E402
import transformers  # noqa: E402
import modelopt  # noqa: E402
import modelopt.torch.quantization as mtq  # noqa: E402
from modelopt.torch.export import export_hf_checkpoint  # noqa: E402
from modelopt.torch.quantization import model_calib, tensor_quant  # noqa: E402
from modelopt.torch.quantization.qtensor import NVFP4QTensor  # noqa: E402


CUDA_BLOCK_QUANT = tensor_quant.dynamic_block_quantize_op


def nvfp4_block_quant_on_cpu(inputs, block_size, amax, num_bits, exponent_bits, scale_num_bits, scale_exponent_bits):
    """ModelOpt's dynamic NVFP4 block fake quantization (E2M1 in blocks of 16, E4M3 scales under
    the global scale amax / (6 x 448)) through NVFP4QTensor, on CPU; other formats as before."""
    if inputs.is_cuda or not (num_bits == 4 and exponent_bits == 2 and block_size == 16):
        return CUDA_BLOCK_QUANT(inputs, block_size, amax, num_bits, exponent_bits, scale_num_bits,
                                scale_exponent_bits)
    scale_2 = amax.float().amax() / (6.0 * 448.0)
    q, scale, _ = NVFP4QTensor.quantize(inputs, 16, weights_scaling_factor_2=scale_2)
    return q.dequantize(dtype=inputs.dtype, scale=scale, double_scale=scale_2, block_sizes={-1: 16})


def windows():
    flat = json.load(open(IDS))
    return [torch.tensor([flat[i:i + WINDOW]]) for i in range(0, len(flat), WINDOW)]


def calibrate_and_export(model_name, case, export_dir, choices):
    """mtq.quantize with awq_lite, each linear's choice recorded as ModelOpt applies it."""
    path = os.path.join(SHARED, "models", model_name)
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).eval()
    batches = windows()

    def forward_loop(m):
        for ids in batches:
            m(ids)

    apply = model_calib.apply_pre_quant_scale_and_smooth

    def recording_apply(linear, pre_quant_scale=None):
        helper = linear.awq_lite
        choices[helper.name] = {"alpha": helper.best_alpha, "loss": [float(v) for v in helper.loss.values()]}
        return apply(linear, pre_quant_scale)

    model_calib.apply_pre_quant_scale_and_smooth = recording_apply
    tensor_quant.dynamic_block_quantize_op = nvfp4_block_quant_on_cpu
    try:
        with torch.no_grad():
            mtq.quantize(model, getattr(mtq, CASES[case]), forward_loop)
        with torch.inference_mode():
            export_hf_checkpoint(model, export_dir=export_dir)
    finally:
        model_calib.apply_pre_quant_scale_and_smooth = apply
        tensor_quant.dynamic_block_quantize_op = CUDA_BLOCK_QUANT


def vectors_of(export_dir, tensors):
    """Each 1-D BF16 tensor's values as hex bf16 bit patterns."""
    from safetensors import safe_open
    path = os.path.join(export_dir, "model.safetensors")
    with safe_open(path, "pt") as f:
        for name, record in tensors.items():
            if record["dtype"] == "BF16" and len(record["shape"]) == 1:
                bits = f.get_tensor(name).view(torch.int16).numpy().astype("<u2")
                record["bf16"] = bits.tobytes().hex()


def describe(model_name, case, export_dir, choices):
    with open(os.path.join(export_dir, "hf_quant_config.json")) as f:
        hf_quant_config = json.load(f)
    with open(os.path.join(export_dir, "config.json")) as f:
        quantization_config = json.load(f).get("quantization_config")
    tensors = tensor_records(export_dir, lambda dtype, shape: dtype == "F32" and shape == [])
    vectors_of(export_dir, tensors)
    return {
        "model": model_name,
        "case": case,
        "modelopt_config": CASES[case] + (" (NVFP4 fake quantization through NVFP4QTensor on CPU)"
                                          if case == "nvfp4" else ""),
        "modelopt_version": modelopt.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "calibration": f"calib-ids.json: 16 windows of {WINDOW} tokens, one per forward",
        "linears": choices,
        "tensors": tensors,
        "hf_quant_config": wildcard_versions(hf_quant_config),
        "quantization_config": wildcard_versions(quantization_config),
    }


def record(model_name, case, keep):
    choices = {}
    return in_export_dir(keep, case, "strata-awq-", lambda d: calibrate_and_export(model_name, case, d, choices),
                         lambda d: describe(model_name, case, d, choices))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default=MODELS[0], help="the model under ../shared/models")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only this case (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="export into DIR/<case> and leave it there")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    out = os.path.join(ROOT, "tests", "golden", "awq", args.model)
    os.makedirs(out, exist_ok=True)
    different = 0
    for case in args.case or list(CASES):
        text = dumps_record(record(args.model, case, args.keep))
        different += not write_or_check(os.path.join(out, case + ".json"), text.encode(), args.check)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
