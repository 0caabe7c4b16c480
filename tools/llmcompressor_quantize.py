#!/usr/bin/env python3
"""Quantizes a model with llm-compressor itself, for comparing its output with strata's.

    python3 tools/llmcompressor_quantize.py MODEL_DIR OUT_DIR --ids IDS.json --seq 512 \\
        [--scheme W4A16] [--algo gptq|rtn|awq|awq+gptq] [--smooth A] [--tokenizer DIR]

Runs llm-compressor's `oneshot` on CPU (GPTQModifier or QuantizationModifier, targets
"Linear", ignoring lm_head and MoE routers; with --smooth A, SmoothQuantModifier(smoothing_strength=A)
first, its default mappings; --algo awq: AWQModifier() then QuantizationModifier, its AWQ
recipe, awq+gptq: AWQModifier() then GPTQModifier) over the token windows of IDS.json (a flat
list of ids, e.g. `strata tokenize MODEL_DIR --calib TEXT --calib-samples N --calib-seq L
-o IDS.json`, cut into windows of --seq), and saves the compressed-tensors checkpoint
(save_compressed=True) with the tokenizer. `strata eval OUT_DIR` then evaluates it with
the same evaluator as strata's own outputs. Runs in build/llmcompressor-venv
(tools_venv.py).
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LLM_COMPRESSOR_VENV = os.path.join(ROOT, "build", "llmcompressor-venv")
PACKAGES = ["llmcompressor==0.14.0.1", "datasets", "safetensors"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools_venv import venv_python  # noqa: E402

if os.path.realpath(sys.prefix) != os.path.realpath(LLM_COMPRESSOR_VENV):
    python = venv_python(PACKAGES, LLM_COMPRESSOR_VENV)
    os.execv(python, [python, *sys.argv])

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from llmcompressor import oneshot  # noqa: E402
from llmcompressor.modifiers.gptq import GPTQModifier  # noqa: E402
from llmcompressor.modifiers.quantization import QuantizationModifier  # noqa: E402
from llmcompressor.modifiers.transform.awq import AWQModifier  # noqa: E402
from llmcompressor.modifiers.transform.smoothquant import SmoothQuantModifier  # noqa: E402
from llmcompressor.pipelines.cache import IntermediatesCache  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--ids", required=True, help="flat JSON list of token ids")
    parser.add_argument("--seq", type=int, required=True, help="tokens per calibration window")
    parser.add_argument("--scheme", default="W4A16", help="llm-compressor preset scheme (default W4A16)")
    parser.add_argument("--algo", choices=["gptq", "rtn", "awq", "awq+gptq"], default="gptq")
    parser.add_argument("--smooth", type=float, help="SmoothQuantModifier first, with this smoothing_strength")
    parser.add_argument("--tokenizer", help="tokenizer directory (default: MODEL_DIR)")
    args = parser.parse_args()
    ids = json.load(open(args.ids))
    windows = [ids[i:i + args.seq] for i in range(0, len(ids) - args.seq + 1, args.seq)]
    model = transformers.AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.bfloat16)
    tokenizer = transformers.AutoTokenizer.from_pretrained(args.tokenizer or args.model_dir)
    data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * args.seq for _ in windows]})
    ignore = ["lm_head", "re:.*mlp.gate$"]
    recipe = (GPTQModifier(targets="Linear", scheme=args.scheme, ignore=ignore) if args.algo.endswith("gptq")
              else QuantizationModifier(targets="Linear", scheme=args.scheme, ignore=ignore))
    if args.algo.startswith("awq"):
        recipe = [AWQModifier(), recipe]
        # AWQ pins its cached inputs, which needs a CUDA driver with torch's CUDA build; no values move.
        IntermediatesCache.pin_memory = lambda self, *a, **k: None
    if args.smooth is not None:
        recipe = [SmoothQuantModifier(smoothing_strength=args.smooth), recipe]
    oneshot(model=model, dataset=data, recipe=recipe, processor=tokenizer, max_seq_length=args.seq,
            num_calibration_samples=len(windows), batch_size=1, shuffle_calibration_samples=False)
    model.save_pretrained(args.out_dir, save_compressed=True)
    tokenizer.save_pretrained(args.out_dir)
    print(f"wrote {args.out_dir} ({len(windows)} windows of {args.seq} tokens, {args.algo} {args.scheme})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
