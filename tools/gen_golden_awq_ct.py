#!/usr/bin/env python3
"""Golden files of llm-compressor's AWQModifier, for `strata quantize --algo awq --format compressed-tensors`.

llm-compressor 0.14.0.1 (its own venv, build/llmcompressor-venv) runs `oneshot` on CPU with its
AWQ recipe as its examples write it, [AWQModifier(), QuantizationModifier(targets=["Linear"],
scheme="W4A16_ASYM", ignore=["lm_head"])] (default mappings for LlamaForCausalLM, duo
scaling, 20 grid points), on bf16 ../shared/models/llama-19m (its default mappings) and
qwen3moe-47m (its mixture-of-experts mappings: post_attention_layernorm -> the router and every
expert's gate/up, one up_proj -> down_proj per expert; every expert calibrated on every token,
moe_calibrate_all_experts's default), fed the 16 windows of 128 tokens
of tests/golden/e2e/calib-ids.json (what `strata quantize --calib calib-ids.json --calib-format
ids --calib-samples 16 --calib-seq 128` reads), one window per batch, and saves the compressed
checkpoint. Recorded (tests/golden/awq-ct/<model>/w4a16-asym.json):

    mappings  per mapping in llm-compressor's order: the smooth layer, the 20 grid losses
              (_compute_loss's values) and the index of the first least one
    norms     every norm of the saved checkpoint: bf16 values (bit patterns in hex), bf16(g / s)
    tensors   per quantized linear the SHA-256 of weight_packed, weight_scale, weight_zero_point
    routers   (MoE) every mlp.gate.weight: bf16 values (hex), its columns multiplied by s

tests/unit/test_awq_ct_golden.c quantizes the same model on the same windows and compares. CI
never runs this script.

Usage:
    python3 tools/gen_golden_awq_ct.py [--model qwen3moe-47m]   # write the golden file
    python3 tools/gen_golden_awq_ct.py --check                 # regenerate in memory and compare
"""
import argparse
import hashlib
import json
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODELS = ("llama-19m", "qwen3moe-47m")
IDS = os.path.join(ROOT, "tests", "golden", "e2e", "calib-ids.json")
LLM_COMPRESSOR_VENV = os.path.join(ROOT, "build", "llmcompressor-venv")
PACKAGES = ["llmcompressor==0.14.0.1", "datasets", "safetensors"]
WINDOW = 128

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from golden_file import dumps_record, write_or_check  # noqa: E402
from tools_venv import venv_python  # noqa: E402

if os.path.realpath(sys.prefix) != os.path.realpath(LLM_COMPRESSOR_VENV):
    python = venv_python(PACKAGES, LLM_COMPRESSOR_VENV)
    os.execv(python, [python, *sys.argv])

import llmcompressor  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.quantization import QuantizationModifier  # noqa: E402
from llmcompressor.modifiers.transform.awq import AWQModifier  # noqa: E402
from llmcompressor.pipelines.cache import IntermediatesCache  # noqa: E402
from safetensors import safe_open  # noqa: E402

NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")
QUANTIZED = ("weight_packed", "weight_scale", "weight_zero_point")
ROUTER = "mlp.gate.weight"


def bf16_hex(t):
    return t.contiguous().view(torch.int16).numpy().astype("<u2").tobytes().hex()


def sha256(t):
    return hashlib.sha256(t.contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()


def record(model_name):
    # Every grid loss, in the order _compute_best_scale computes them, per mapping.
    mappings = []
    compute_loss, best_scale = AWQModifier._compute_loss, AWQModifier._compute_best_scale

    def recording_loss(self, *args, **kwargs):
        loss = compute_loss(self, *args, **kwargs)
        mappings[-1]["losses"].append(float(loss))
        return loss

    def recording_best_scale(self, mapping, *args, **kwargs):
        mappings.append({"smooth": mapping.smooth_name, "parent": mapping.parent_name, "losses": []})
        return best_scale(self, mapping, *args, **kwargs)

    AWQModifier._compute_loss = recording_loss
    # Pinning host memory needs a CUDA driver (torch's CUDA build); it moves no values.
    IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None
    AWQModifier._compute_best_scale = recording_best_scale

    flat = json.load(open(IDS))
    windows = [flat[i:i + WINDOW] for i in range(0, len(flat), WINDOW)]
    model = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(SHARED, "models", model_name),
                                                              dtype=torch.bfloat16)
    data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * WINDOW for _ in windows]})
    recipe = [AWQModifier(), QuantizationModifier(targets=["Linear"], scheme="W4A16_ASYM", ignore=["lm_head"])]
    oneshot(model=model, dataset=data, recipe=recipe, max_seq_length=WINDOW, num_calibration_samples=len(windows),
            batch_size=1, shuffle_calibration_samples=False)
    for m in mappings:
        m["best"] = min(range(len(m["losses"])), key=lambda i: (m["losses"][i], i))
    norms, tensors, routers = {}, {}, {}
    with tempfile.TemporaryDirectory() as out:
        model.save_pretrained(out, save_compressed=True)
        for name in sorted(os.listdir(out)):
            if not name.endswith(".safetensors"):
                continue
            with safe_open(os.path.join(out, name), "pt") as f:
                for key in f.keys():
                    t = f.get_tensor(key)
                    if key.endswith(NORMS):
                        norms[key] = bf16_hex(t)
                    elif key.endswith(ROUTER):
                        routers[key] = bf16_hex(t)
                    elif key.endswith(QUANTIZED):
                        tensors[key] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                                        "sha256": sha256(t)}
    out = {
        "model": model_name,
        "recipe": "[AWQModifier(), QuantizationModifier(targets=['Linear'], scheme='W4A16_ASYM', "
                  "ignore=['lm_head'])], default mappings",
        "llmcompressor_version": llmcompressor.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "calibration": f"calib-ids.json: 16 windows of {WINDOW} tokens, one per batch",
        "mappings": mappings,
        "norms": norms,
        "tensors": tensors,
    }
    if routers:
        out["routers"] = routers
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=MODELS, default=MODELS[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed file instead of writing")
    args = parser.parse_args()
    out = os.path.join(ROOT, "tests", "golden", "awq-ct", args.model)
    os.makedirs(out, exist_ok=True)
    text = dumps_record(record(args.model))
    return 0 if write_or_check(os.path.join(out, "w4a16-asym.json"), text.encode(), args.check) else 1


if __name__ == "__main__":
    sys.exit(main())
