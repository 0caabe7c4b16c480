#!/usr/bin/env python3
"""Golden files of llm-compressor's SmoothQuantModifier on llama-19m, for `strata quantize --smooth A`.

llm-compressor 0.14.0.1 (its own venv, build/llmcompressor-venv: it pins older torch and
transformers than the ModelOpt goldens) runs `oneshot` on CPU with the recipe
[SmoothQuantModifier(smoothing_strength=A)] (its default mappings for LlamaForCausalLM:
input_layernorm -> q/k/v, post_attention_layernorm -> gate/up) on bf16
../shared/models/llama-19m, fed the 16 windows of 128 tokens of tests/golden/e2e/calib-ids.json
(what `strata quantize --calib calib-ids.json --calib-format ids --calib-samples 16
--calib-seq 128` reads), one window per batch. Recorded (tests/golden/smooth/llama-19m/a<A>.json):

    norms     every smoothed norm's bf16 values (bit patterns in hex): bf16(g / s)
    linears   per smoothed linear its weight's amax after smoothing (max |bf16(W s)|) and the
              SHA-256 of its smoothed bf16 weight

tests/unit/test_smooth_golden.c quantizes the same model on the same windows with --smooth A
and compares its output's norms and weight scales with them. CI never runs this script.

Usage:
    python3 tools/gen_golden_smooth.py               # strengths 0.5 and 0.8
    python3 tools/gen_golden_smooth.py --check       # regenerate in memory and compare
"""
import argparse
import hashlib
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODEL = os.path.join(SHARED, "models", "llama-19m")
IDS = os.path.join(ROOT, "tests", "golden", "e2e", "calib-ids.json")
OUT = os.path.join(ROOT, "tests", "golden", "smooth", "llama-19m")
LLM_COMPRESSOR_VENV = os.path.join(ROOT, "build", "llmcompressor-venv")
PACKAGES = ["llmcompressor==0.14.0.1", "datasets", "safetensors"]
WINDOW = 128
STRENGTHS = ["0.5", "0.8"]

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
from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier  # noqa: E402

SMOOTHED = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj")
NORMS = ("input_layernorm", "post_attention_layernorm")


def bf16_hex(t):
    return t.contiguous().view(torch.int16).numpy().astype("<u2").tobytes().hex()


def record(strength):
    flat = json.load(open(IDS))
    windows = [flat[i:i + WINDOW] for i in range(0, len(flat), WINDOW)]
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * WINDOW for _ in windows]})
    oneshot(model=model, dataset=data, recipe=[SmoothQuantModifier(smoothing_strength=float(strength))],
            max_seq_length=WINDOW, num_calibration_samples=len(windows), batch_size=1,
            shuffle_calibration_samples=False)
    norms, linears = {}, {}
    for name, tensor in model.state_dict().items():
        if not name.endswith(".weight"):
            continue
        module = name[:-len(".weight")]
        if module.endswith(NORMS):
            norms[name] = bf16_hex(tensor)
        elif module.endswith(SMOOTHED):
            linears[module] = {"amax": float(tensor.float().abs().max()),
                               "sha256": hashlib.sha256(tensor.contiguous().view(torch.int16).numpy()
                                                        .astype("<u2").tobytes()).hexdigest()}
    return {
        "model": "llama-19m",
        "smoothing_strength": float(strength),
        "recipe": f"[SmoothQuantModifier(smoothing_strength={strength})], default mappings",
        "llmcompressor_version": llmcompressor.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "calibration": f"calib-ids.json: 16 windows of {WINDOW} tokens, one per batch",
        "norms": norms,
        "linears": linears,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strength", action="append", choices=STRENGTHS, help="only this one (repeatable)")
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args()
    os.makedirs(OUT, exist_ok=True)
    different = 0
    for strength in args.strength or STRENGTHS:
        text = dumps_record(record(strength))
        different += not write_or_check(os.path.join(OUT, f"a{strength}.json"), text.encode(), args.check)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
