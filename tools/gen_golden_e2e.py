#!/usr/bin/env python3
"""End-to-end golden files of NVIDIA ModelOpt: every exported tensor's bytes, as SHA-256.

For each model (../shared/models/llama-19m, ../shared/models/qwen3moe-47m, both bf16) and
each case, the model is quantized on CPU with the real ModelOpt config (algorithm "max")
by `mtq.quantize`, fed the calibration windows of tests/golden/e2e/calib-ids.json one
window per forward (what `strata quantize --calib calib-ids.json --calib-format ids`
reads), and exported with `export_hf_checkpoint`, the exporter behind ModelOpt's hf_ptq
example. The record holds, per tensor, its dtype, shape and the SHA-256 of its bytes (and
the value of every scalar F32 tensor: input and KV-cache scales are compared within a
stated bound, tests/cli/test_e2e_golden.sh), hf_quant_config.json and config.json's
quantization_config. CI compares strata's output with them without Python.

The calibration windows are strata's own (`strata tokenize --calib` of the groups_merged
text, 16 windows of 128 tokens, seed 0: the tokenizer is golden-tested against Hugging
Face tokenizers), written once by this script with --ids and committed.

Cases (tests/golden/e2e/<model>/<case>.json) are those of gen_golden_export.py. The
synthetic DeepSeek-V3 (`strata generate --arch deepseek_v3`, seed 11, 3 layers: a dense
one, two MoE; ids taken modulo its vocabulary) has the cases of ModelOpt's DeepSeek recipe
(examples/deepseek/ptq.py) in transformers form: attention disabled ("*self_attn*") except,
for FP4 configs, o_proj (the recipe's "*wo*" override), and mla_quant "per_tensor_fp8"
(attention in per-tensor FP8 beside NVFP4 MLPs: MIXED_PRECISION).

Usage:
    python3 tools/gen_golden_e2e.py --ids                # (re)write calib-ids.json with build/release/strata
    python3 tools/gen_golden_e2e.py                      # every model and case
    python3 tools/gen_golden_e2e.py --model llama-19m --case fp8 --keep build/e2e
    python3 tools/gen_golden_e2e.py --check              # regenerate in memory and compare
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "e2e")
IDS = os.path.join(OUT, "calib-ids.json")
MODELS = {"llama-19m": "llama-19m", "qwen3moe-47m": "qwen3moe-47m", "synth-deepseek-v3": None,
          "synth-glm4-moe": None}
# `strata generate` options of the synthetic models; the dense MLP 352 wide (the default 344
# is no multiple of NVFP4's 16-blocks)
SYNTH = {"synth-deepseek-v3": ["--arch", "deepseek_v3", "--seed", "11", "--layers", "3",
                               "--config", "{\"intermediate_size\": 352}"],
         "synth-glm4-moe": ["--arch", "glm4_moe", "--seed", "11", "--layers", "3",
                            "--config", "{\"intermediate_size\": 352}"]}
# case: (scheme, kv, ModelOpt config, algorithm, attention mode)
GLM_CASES = {  # hf_ptq's way: every linear but the routers and lm_head
    "nvfp4": ("nvfp4", None, "NVFP4_DEFAULT_CFG", None, "auto"),
    "fp8": ("fp8", None, "FP8_DEFAULT_CFG", None, "auto"),
}
DEEPSEEK_CASES = {
    "nvfp4": ("nvfp4", None, "NVFP4_DEFAULT_CFG", None, "auto"),
    "fp8": ("fp8", None, "FP8_DEFAULT_CFG", None, "auto"),
    "nvfp4-attention-fp8": ("nvfp4", None, "NVFP4_DEFAULT_CFG", None, "fp8"),
}
N_WINDOWS, WINDOW, SEED = 16, 128, 0
PACKAGES = ["torch", "transformers", "nvidia-modelopt", "safetensors", "requests"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_file import dumps_record, in_export_dir, tensor_records, write_or_check  # noqa: E402
from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import torch  # noqa: E402
import transformers  # noqa: E402
import modelopt  # noqa: E402
import modelopt.torch.quantization as mtq  # noqa: E402
from modelopt.torch.export import export_hf_checkpoint  # noqa: E402

from gen_golden_export import CASES, quant_config, wildcard_versions  # noqa: E402


def write_ids():
    """calib-ids.json: strata tokenize --calib of the groups_merged text."""
    strata = os.path.join(ROOT, "build", "release", "strata")
    text = os.path.join(SHARED, "data", "calib-groups-merged", "groups_merged.txt")
    os.makedirs(OUT, exist_ok=True)
    subprocess.check_call([strata, "-q", "tokenize", os.path.join(SHARED, "models", "llama-19m"), "--calib", text,
                           "--calib-samples", str(N_WINDOWS), "--calib-seq", str(WINDOW), "--seed", str(SEED),
                           "-o", IDS])
    print(f"wrote {IDS}")


def windows():
    flat = json.load(open(IDS))
    assert len(flat) == N_WINDOWS * WINDOW, f"{IDS}: {len(flat)} ids, expected {N_WINDOWS} x {WINDOW}"
    return [flat[i:i + WINDOW] for i in range(0, len(flat), WINDOW)]


def cases_of(model_name):
    if model_name == "synth-deepseek-v3":
        return DEEPSEEK_CASES
    if model_name == "synth-glm4-moe":
        return GLM_CASES
    return {k: v + ("auto",) for k, v in CASES.items()}


def model_dir_of(model_name, temp):
    if model_name not in SYNTH:
        return os.path.join(SHARED, "models", MODELS[model_name])
    path = os.path.join(temp, model_name)
    strata = os.path.join(ROOT, "build", "release", "strata")
    subprocess.check_call([strata, "-q", "generate", "-o", path] + SYNTH[model_name])
    return path


def deepseek_recipe(cfg, attention):
    """ModelOpt's examples/deepseek/ptq.py in ModelOpt 0.47's list form and transformers' names."""
    entries = cfg["quant_cfg"]
    weight = next(e for e in entries if e.get("quantizer_name") == "*weight_quantizer")["cfg"]
    inputs = next(e for e in entries if e.get("quantizer_name") == "*input_quantizer")["cfg"]
    entries.append({"quantizer_name": "*lm_head*", "enable": False})  # the recipe's "*head*"
    if attention == "auto":
        entries.append({"quantizer_name": "*self_attn*", "enable": False})
        if weight.get("num_bits") == (2, 1) or weight.get("num_bits") == [2, 1]:  # "FP4" in the config name
            entries.append({"quantizer_name": "*o_proj*weight_quantizer", "cfg": copy.deepcopy(weight), "enable": True})
            entries.append({"quantizer_name": "*o_proj*input_quantizer", "cfg": copy.deepcopy(inputs), "enable": True})
    elif attention == "fp8":  # mla_quant "per_tensor_fp8"
        for q in ("weight_quantizer", "input_quantizer"):
            entries.append({"quantizer_name": "*self_attn*" + q, "cfg": {"num_bits": (4, 3), "axis": None},
                            "enable": True})
    return cfg


def calibrate_and_export(model_name, case, export_dir):
    scheme, kv, config_name, algorithm, attention = cases_of(model_name)[case]
    with tempfile.TemporaryDirectory(prefix="strata-e2e-model-") as temp:
        model = transformers.AutoModelForCausalLM.from_pretrained(model_dir_of(model_name, temp), dtype=torch.bfloat16)
    model.eval()
    vocab = model.config.vocab_size
    batches = [torch.tensor([[t % vocab for t in w]]) for w in windows()]

    def forward_loop(m):
        for ids in batches:
            m(ids)

    cfg = quant_config(config_name, algorithm, kv)
    if model_name == "synth-deepseek-v3":
        cfg = deepseek_recipe(cfg, attention)
    with torch.no_grad():
        mtq.quantize(model, cfg, forward_loop)
    with torch.inference_mode():
        export_hf_checkpoint(model, export_dir=export_dir)


def tensors_of(export_dir):
    return tensor_records(export_dir, lambda dtype, shape: dtype == "F32" and shape == [])


def describe(model_name, case, export_dir):
    scheme, kv, config_name, algorithm, attention = cases_of(model_name)[case]
    hf_quant_config = None
    path = os.path.join(export_dir, "hf_quant_config.json")
    if os.path.exists(path):
        with open(path) as f:
            hf_quant_config = json.load(f)
    with open(os.path.join(export_dir, "config.json")) as f:
        quantization_config = json.load(f).get("quantization_config")
    return {
        "model": model_name,
        "scheme": scheme,
        "kv_cache": kv,
        **({"attention": attention, "synthetic": SYNTH[model_name]} if model_name in SYNTH else {}),
        "modelopt_config": config_name + (f' (algorithm "{algorithm}")' if algorithm else ""),
        "modelopt_version": modelopt.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "calibration": f"calib-ids.json: {N_WINDOWS} windows of {WINDOW} tokens, one per forward",
        "tensors": tensors_of(export_dir),
        "hf_quant_config": wildcard_versions(hf_quant_config),
        "quantization_config": wildcard_versions(quantization_config),
    }


def record(model_name, case, keep):
    try:
        return export_and_describe(model_name, case, keep)
    except Exception as e:  # ModelOpt refusing (or failing) a case is itself the golden fact
        scheme, kv, config_name, algorithm, attention = cases_of(model_name)[case]
        return {"model": model_name, "scheme": scheme, "kv_cache": kv, "modelopt_config": config_name,
                "modelopt_version": modelopt.__version__, "transformers_version": transformers.__version__,
                "export_error": f"{type(e).__name__}: {e}"}


def export_and_describe(model_name, case, keep):
    return in_export_dir(keep, os.path.join(model_name, case), "strata-e2e-",
                         lambda d: calibrate_and_export(model_name, case, d), lambda d: describe(model_name, case, d))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", action="store_true", help="write calib-ids.json with build/release/strata and stop")
    parser.add_argument("--model", action="append", choices=sorted(MODELS), help="only this model (repeatable)")
    parser.add_argument("--case", action="append", choices=sorted(set(CASES) | set(DEEPSEEK_CASES) | set(GLM_CASES)),
                        help="only this case (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="export into DIR/<model>/<case> and leave it there")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    if args.ids:
        write_ids()
        return 0
    torch.set_num_threads(1)
    different = 0
    for model_name in args.model or list(MODELS):
        os.makedirs(os.path.join(OUT, model_name), exist_ok=True)
        for case in [c for c in (args.case or list(cases_of(model_name))) if c in cases_of(model_name)]:
            text = dumps_record(record(model_name, case, args.keep))
            path = os.path.join(OUT, model_name, case + ".json")
            different += not write_or_check(path, text.encode(), args.check)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
