#!/usr/bin/env python3
"""End-to-end golden files of llm-compressor: compressed-tensors checkpoints, every tensor's bytes as SHA-256.

For each model (../shared/models/llama-19m and qwen3moe-47m, bf16) and each case, the model
is quantized on CPU by llm-compressor's `oneshot` with a `QuantizationModifier` (round to
nearest; weights observed with compressed-tensors' min/max, static activations with
"static_minmax", i.e. the running max, as strata's max) fed the calibration windows of
tests/golden/e2e/calib-ids.json, then saved with `save_pretrained(save_compressed=True)`,
which runs compressed-tensors' compressors. The record has the same shape as
gen_golden_e2e.py's (tests/golden/e2e-ct/<model>/<case>.json): per tensor its dtype, shape,
SHA-256 and, for scale tensors of one element, the value (activation and KV-cache scales
come from llm-compressor's bf16 forward pass, strata's from its fp32 one, and are compared
within a bound: tests/unit/test_e2e_golden.c), and config.json's quantization_config.
CI compares strata's `--format compressed-tensors` output with them without Python.

Beside them, input-scales.json: compressed-tensors' own stored input scales for a list of
activation amax values (calculate_qparams for FP8's input_scale, generate_gparam for
NVFP4's input_global_scale, in bf16 and f32), so the arithmetic from an amax to the stored
value is checked exactly even where the calibrated amax differs.

llm-compressor pins its own torch, transformers and compressed-tensors, so this runs in
build/llmcompressor-venv (tools_venv.py).

Usage:
    python3 tools/gen_golden_ct.py                          # every model and case
    python3 tools/gen_golden_ct.py --model llama-19m --case fp8 --keep build/e2e-ct
    python3 tools/gen_golden_ct.py --check                  # regenerate in memory and compare
    python3 tools/gen_golden_ct.py --input-scales           # only input-scales.json
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "e2e-ct")
IDS = os.path.join(ROOT, "tests", "golden", "e2e", "calib-ids.json")
N_WINDOWS, WINDOW = 16, 128
PACKAGES = ["llmcompressor==0.14.0.1", "datasets", "safetensors"]
LLM_COMPRESSOR_VENV = os.path.join(ROOT, "build", "llmcompressor-venv")
MODELS = ["llama-19m", "qwen3moe-47m"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_file import dumps_record, in_export_dir, tensor_records, write_or_check  # noqa: E402
from tools_venv import venv_python  # noqa: E402

if os.path.realpath(sys.prefix) != os.path.realpath(LLM_COMPRESSOR_VENV):
    python = venv_python(PACKAGES, LLM_COMPRESSOR_VENV)
    os.execv(python, [python, *sys.argv])

import torch  # noqa: E402
import transformers  # noqa: E402
import compressed_tensors  # noqa: E402
import llmcompressor  # noqa: E402
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme  # noqa: E402
from datasets import Dataset  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.quantization import QuantizationModifier  # noqa: E402


def weights_only(**weights):
    return {"weights": QuantizationArgs(**weights)}


# strata's int8 is per-channel weight-only (llm-compressor's preset W8A16 is group 128);
# its fp8-block is weight-only (the preset FP8_BLOCK adds dynamic per-group inputs).
INT8_CHANNEL = weights_only(num_bits=8, type="int", strategy="channel", symmetric=True, dynamic=False)
FP8_BLOCK_WEIGHTS = weights_only(num_bits=8, type="float", strategy="block", symmetric=True, dynamic=False,
                                 block_structure=[128, 128])
KV_FP8 = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}

# case: (strata scheme, kv cache, llm-compressor scheme: a preset name or QuantizationScheme keywords)
CASES = {
    "fp8": ("fp8", None, "FP8"),
    "fp8-kv-fp8": ("fp8", "fp8", "FP8"),
    "fp8-dynamic": ("fp8-dynamic", None, "FP8_DYNAMIC"),
    "fp8-block": ("fp8-block", None, FP8_BLOCK_WEIGHTS),
    "nvfp4": ("nvfp4", None, "NVFP4"),
    "nvfp4-weight-only": ("nvfp4-weight-only", None, "NVFP4A16"),
    "int8": ("int8", None, INT8_CHANNEL),
    "int8-w8a8": ("int8-w8a8", None, "W8A8"),
    "int4": ("int4", None, "W4A16"),
    "int4-asym": ("int4-asym", None, "W4A16_ASYM"),
    "mxfp4": ("mxfp4", None, "MXFP4"),
}
MOE_CASES = ["fp8", "nvfp4", "int4", "int8-w8a8"]
# What strata leaves unquantized, in llm-compressor's words.
IGNORE = ["lm_head", "re:.*mlp.gate$"]


def cases_of(model_name):
    return {k: v for k, v in CASES.items() if model_name == "llama-19m" or k in MOE_CASES}


def windows():
    flat = json.load(open(IDS))
    assert len(flat) == N_WINDOWS * WINDOW, f"{IDS}: {len(flat)} ids, expected {N_WINDOWS} x {WINDOW}"
    return [flat[i:i + WINDOW] for i in range(0, len(flat), WINDOW)]


def quantize_and_save(model_name, case, out):
    _, kv, scheme = CASES[case]
    model_dir = os.path.join(SHARED, "models", model_name)
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    ids = windows()
    data = Dataset.from_dict({"input_ids": ids, "attention_mask": [[1] * WINDOW for _ in ids]})
    if isinstance(scheme, str):
        modifier = QuantizationModifier(targets=["Linear"], scheme=scheme, ignore=IGNORE,
                                        kv_cache_scheme=KV_FP8 if kv else None)
    else:
        modifier = QuantizationModifier(config_groups={"group_0": QuantizationScheme(targets=["Linear"], **scheme)},
                                        ignore=IGNORE, kv_cache_scheme=KV_FP8 if kv else None)
    oneshot(model=model, dataset=data, recipe=modifier, processor=tokenizer, max_seq_length=WINDOW,
            num_calibration_samples=len(ids), batch_size=1, shuffle_calibration_samples=False)
    model.save_pretrained(out, save_compressed=True)


def tensors_of(export_dir):
    one_element = lambda dtype, shape: dtype in ("F32", "BF16") and shape in ([], [1])  # noqa: E731
    return tensor_records(export_dir, one_element)


def wildcard_versions(config):
    config = json.loads(json.dumps(config))
    if isinstance(config, dict) and "version" in config:
        config["version"] = "*"
    return config


def describe(model_name, case, export_dir):
    scheme, kv, preset = CASES[case]
    with open(os.path.join(export_dir, "config.json")) as f:
        quantization_config = json.load(f).get("quantization_config")
    return {
        "model": model_name,
        "scheme": scheme,
        "kv_cache": kv,
        "format": "compressed-tensors",
        "llmcompressor_scheme": preset if isinstance(preset, str) else "custom (see tools/gen_golden_ct.py)",
        "llmcompressor_version": llmcompressor.__version__,
        "compressed_tensors_version": compressed_tensors.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "calibration": f"calib-ids.json: {N_WINDOWS} windows of {WINDOW} tokens, batch size 1",
        "tensors": tensors_of(export_dir),
        "quantization_config": wildcard_versions(quantization_config),
    }


def record(model_name, case, keep):
    return in_export_dir(keep, os.path.join(model_name, case), "strata-e2e-ct-",
                         lambda d: quantize_and_save(model_name, case, d), lambda d: describe(model_name, case, d))


def input_scales():
    """compressed-tensors' FP8 input_scale and NVFP4 input_global_scale of given amax values."""
    from compressed_tensors.quantization.utils.helpers import calculate_qparams, generate_gparam
    fp8 = QuantizationArgs(num_bits=8, type="float", strategy="tensor", symmetric=True, dynamic=False)
    amaxes = [0.0, 1e-30, 0.0546875, 0.33203125, 2.21875, 3.796875, 4.125, 17.0, 448.0, 12345.678]
    cases = []
    for dtype_name, dtype in (("BF16", torch.bfloat16), ("F32", torch.float32)):
        for a in amaxes:
            amax = torch.tensor([a], dtype=dtype)
            scale, _ = calculate_qparams(-amax, amax, fp8)
            gs = generate_gparam(-amax, amax)
            cases.append({"dtype": dtype_name, "amax": float(amax.float()[0]), "fp8_input_scale": float(scale.float()[0]),
                          "nvfp4_input_global_scale": float(gs.float().reshape(-1)[0])})
    text = json.dumps({"compressed_tensors_version": compressed_tensors.__version__, "torch_version": torch.__version__,
                       "cases": cases}, indent=1, sort_keys=True) + "\n"
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", choices=MODELS, help="only this model (repeatable)")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="only this case (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="save into DIR/<model>/<case> and leave it there")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    parser.add_argument("--input-scales", action="store_true", help="only input-scales.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    different = 0
    if args.input_scales or (not args.model and not args.case):
        different += not write_or_check(os.path.join(OUT, "input-scales.json"), input_scales().encode(), args.check)
    if args.input_scales:
        return 1 if different else 0
    for model_name in args.model or MODELS:
        os.makedirs(os.path.join(OUT, model_name), exist_ok=True)
        for case in [c for c in (args.case or list(CASES)) if c in cases_of(model_name)]:
            text = dumps_record(record(model_name, case, args.keep))
            path = os.path.join(OUT, model_name, case + ".json")
            different += not write_or_check(path, text.encode(), args.check)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
