#!/usr/bin/env python3
"""Golden structure of NVIDIA ModelOpt's Hugging Face export, one file per strata scheme.

Quantizes ../shared/models/llama-19m (LlamaForCausalLM, bf16) on CPU with the real ModelOpt
configs (algorithm "max", calibrated on a few random-token batches: only the structure of the
result matters, not its values), exports it with
`modelopt.torch.export.export_hf_checkpoint`, the exporter behind ModelOpt's hf_ptq example,
and records what that directory holds, so that strata's own ModelOpt-format writer can be
checked against it (tools/check_export.py). CI never runs this script.

Cases (tests/golden/export/<case>.json):
    fp8                  FP8_DEFAULT_CFG                  W8A8 FP8, static per-tensor scales
    fp8-dynamic          FP8_PER_CHANNEL_PER_TOKEN_CFG    FP8 per-channel weights, dynamic per-token inputs
    nvfp4                NVFP4_DEFAULT_CFG                W4A4 NVFP4 (group 16, E4M3 scales)
    nvfp4-weight-only    W4A16_NVFP4_CFG                  NVFP4 weights, bf16 activations
    int8                 INT8_WEIGHT_ONLY_CFG             INT8 per-channel, weight only
    int4                 INT4_AWQ_CFG, algorithm "max"    INT4 group 128, weight only (same
                                                          quantizers as INT4_BLOCKWISE_WEIGHT_ONLY_CFG)
    mxfp4                MXFP4_DEFAULT_CFG                W4A4 MXFP4 (group 32, E8M0 scales, dynamic
                                                          input blocks)
    fp8-block            FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG FP8 weights in 128x128 blocks, one F32 scale
                                                          per block, bf16 activations
    fp8-kv-fp8           fp8 + FP8_KV_CFG                 merged as hf_ptq does it
    nvfp4-kv-fp8         nvfp4 + FP8_KV_CFG               (mtq.update_quant_cfg_with_kv_cache_quant)

Each file is JSON with sorted keys, one tensor per line:
    scheme, kv_cache ("fp8" or null), modelopt_config, modelopt_version, transformers_version,
    quant_algo          hf_quant_config.json's quantization.quant_algo
    tensors             {name: {"dtype": safetensors dtype name, "shape": [...]}} over all shards
    safetensors_metadata  the __metadata__ of the (first) shard header
    hf_quant_config     hf_quant_config.json as written, producer name and version -> "*"
    quantization_config config.json["quantization_config"], producer name and version -> "*"
    config              the rest of config.json (transformers_version -> "*")
    generation_config   generation_config.json if written (transformers_version -> "*")
    files               the sorted file names in the export directory
    export_error        only when ModelOpt refuses to export the case (then no tensors)

Usage:
    python3 tools/gen_golden_export.py                  # writes tests/golden/export/
    python3 tools/gen_golden_export.py --case fp8 --keep build/export-golden
                                                        # one case, keep the export directory
    python3 tools/gen_golden_export.py --check          # regenerate in memory, compare
"""
import argparse
import copy
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODEL = os.path.join(SHARED, "models", "llama-19m")
OUT = os.path.join(ROOT, "tests", "golden", "export")
PACKAGES = ["torch", "transformers", "nvidia-modelopt", "safetensors"]

from golden_file import dumps_record, wildcard_versions, write_or_check  # noqa: E402
from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import torch  # noqa: E402
import transformers  # noqa: E402
import modelopt  # noqa: E402
import modelopt.torch.quantization as mtq  # noqa: E402
from modelopt.torch.export import export_hf_checkpoint  # noqa: E402

# case -> (strata scheme, kv cache, ModelOpt config name, algorithm override)
CASES = {
    "fp8": ("fp8", None, "FP8_DEFAULT_CFG", None),
    "fp8-dynamic": ("fp8-dynamic", None, "FP8_PER_CHANNEL_PER_TOKEN_CFG", None),
    "nvfp4": ("nvfp4", None, "NVFP4_DEFAULT_CFG", None),
    "nvfp4-weight-only": ("nvfp4-weight-only", None, "W4A16_NVFP4_CFG", None),
    "int8": ("int8", None, "INT8_WEIGHT_ONLY_CFG", None),
    "int4": ("int4", None, "INT4_AWQ_CFG", "max"),
    "mxfp4": ("mxfp4", None, "MXFP4_DEFAULT_CFG", None),
    "fp8-block": ("fp8-block", None, "FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG", None),
    "fp8-kv-fp8": ("fp8", "fp8", "FP8_DEFAULT_CFG", None),
    "nvfp4-kv-fp8": ("nvfp4", "fp8", "NVFP4_DEFAULT_CFG", None),
}
KV_CONFIGS = {"fp8": "FP8_KV_CFG"}
CALIB_BATCHES, CALIB_LEN, SEED = 4, 64, 0


def quant_config(config_name, algorithm, kv):
    """The config dict given to mtq.quantize, built the way hf_ptq builds it."""
    cfg = copy.deepcopy(getattr(mtq, config_name))
    if algorithm is not None:
        cfg["algorithm"] = algorithm
    if kv is not None:
        cfg = mtq.update_quant_cfg_with_kv_cache_quant(cfg, getattr(mtq, KV_CONFIGS[kv])["quant_cfg"])
    return cfg


def calibrate_and_export(case, export_dir):
    """Quantizes a fresh llama-19m for the case and exports it into export_dir."""
    scheme, kv, config_name, algorithm = CASES[case]
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    model.eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(SEED)
    batches = [torch.randint(0, vocab, (1, CALIB_LEN), generator=g) for _ in range(CALIB_BATCHES)]

    def forward_loop(m):
        for ids in batches:
            m(ids)

    with torch.no_grad():
        mtq.quantize(model, quant_config(config_name, algorithm, kv), forward_loop)
    with torch.inference_mode():
        export_hf_checkpoint(model, export_dir=export_dir)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


def describe(case, export_dir):
    """The golden record of one export directory."""
    scheme, kv, config_name, algorithm = CASES[case]
    files = sorted(os.listdir(export_dir))
    tensors, metadata = {}, None
    for name in files:
        if not name.endswith(".safetensors"):
            continue
        header = read_safetensors_header(os.path.join(export_dir, name))
        meta = header.pop("__metadata__", None)
        if metadata is None:
            metadata = meta
        for key, info in header.items():
            tensors[key] = {"dtype": info["dtype"], "shape": info["shape"]}
    hf_quant_config = None
    path = os.path.join(export_dir, "hf_quant_config.json")
    if os.path.exists(path):
        with open(path) as f:
            hf_quant_config = json.load(f)
    with open(os.path.join(export_dir, "config.json")) as f:
        config = json.load(f)
    quantization_config = config.pop("quantization_config", None)
    generation_config = None
    path = os.path.join(export_dir, "generation_config.json")
    if os.path.exists(path):
        with open(path) as f:
            generation_config = wildcard_versions(json.load(f))
    config_label = config_name + (f' (algorithm "{algorithm}")' if algorithm else "")
    if kv:
        config_label += f" + {KV_CONFIGS[kv]}"
    return {
        "scheme": scheme,
        "kv_cache": kv,
        "modelopt_config": config_label,
        "modelopt_version": modelopt.__version__,
        "transformers_version": transformers.__version__,
        "quant_algo": ((hf_quant_config or {}).get("quantization") or {}).get("quant_algo"),
        "tensors": tensors,
        "safetensors_metadata": metadata,
        "hf_quant_config": wildcard_versions(hf_quant_config),
        "quantization_config": wildcard_versions(quantization_config),
        "config": wildcard_versions(config),
        "generation_config": generation_config,
        "files": files,
    }


def golden_record(case, keep=None):
    if keep:
        export_dir = os.path.join(keep, case)
        os.makedirs(export_dir, exist_ok=True)
        for name in os.listdir(export_dir):
            os.remove(os.path.join(export_dir, name))
        return run_case(case, export_dir)
    with tempfile.TemporaryDirectory(prefix="strata-export-") as export_dir:
        return run_case(case, export_dir)


def run_case(case, export_dir):
    scheme, kv, config_name, algorithm = CASES[case]
    try:
        calibrate_and_export(case, export_dir)
    except Exception as e:  # ModelOpt refusing a case is itself the golden fact
        return {"scheme": scheme, "kv_cache": kv, "modelopt_config": config_name,
                "modelopt_version": modelopt.__version__, "transformers_version": transformers.__version__,
                "export_error": f"{type(e).__name__}: {e}"}
    return describe(case, export_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="only this case (repeatable); default: all")
    parser.add_argument("--keep", metavar="DIR", help="export into DIR/<case> and leave it there")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    different = 0
    for case in args.case or list(CASES):
        text = dumps_record(golden_record(case, args.keep))
        path = os.path.join(OUT, case + ".json")
        different += not write_or_check(path, text.encode(), args.check)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
