#!/usr/bin/env python3
"""Golden KL-divergence statistics of llama-19m quantized by NVIDIA ModelOpt, from transformers
logits and numpy (tests/golden/kld/llama-19m.json, read by tests/cli/test_eval_golden.sh).

For each case (fp8, nvfp4, int4: ModelOpt's FP8_DEFAULT_CFG, NVFP4_DEFAULT_CFG, INT4_AWQ_CFG with
algorithm "max"), the bf16 model is calibrated by `mtq.quantize` on tests/golden/e2e/calib-ids.json
exactly as tools/gen_golden_e2e.py does (whose exports strata's equal byte for byte), then cast
to fp32 with its quantizers in place, so its forward is ModelOpt's fake-quantized model in fp32.
The base is the same checkpoint in fp32. Both run over EVAL_WINDOWS windows of EVAL_WINDOW
WikiText-2 test tokens (strata's tokenization, stored in the golden file), and numpy computes,
over the second half of each window (llama.cpp's rule, docs/EVAL.md), the statistics
`strata eval QUANT --base ORIGINAL` prints: the test compares strata's numbers on its own
quantized output with these, within the tolerance two fp32 forward passes leave.

Usage:
    python3 tools/gen_golden_kld.py            # write the golden file (needs build/release/strata)
    python3 tools/gen_golden_kld.py --check    # compute again and print the differences
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "kld", "llama-19m.json")
TOKENS_OUT = os.path.join(ROOT, "tests", "golden", "kld", "eval-ids.json")
IDS = os.path.join(ROOT, "tests", "golden", "e2e", "calib-ids.json")
MODEL = os.path.join(SHARED, "models", "llama-19m")
EVAL_WINDOWS, EVAL_WINDOW = 8, 256
PACKAGES = ["torch", "transformers", "nvidia-modelopt", "safetensors", "numpy"]

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import modelopt  # noqa: E402
import modelopt.torch.quantization as mtq  # noqa: E402

from modelopt.torch.quantization.qtensor import NVFP4QTensor  # noqa: E402

from gen_golden_export import CASES, quant_config  # noqa: E402

KLD_FRACTIONS = [1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0]


def eval_tokens():
    """The first EVAL_WINDOWS x EVAL_WINDOW ids of wiki.test.raw, tokenized by strata."""
    strata = os.path.join(ROOT, "build", "release", "strata")
    path = os.path.join(ROOT, "build", "wiki.test.llama-19m.kld.json")
    text = os.path.join(SHARED, "data", "wikitext-2-raw", "wiki.test.raw")
    subprocess.check_call([strata, "-q", "tokenize", MODEL, "--text", text, "-o", path])
    ids = json.load(open(path))
    return ids[:EVAL_WINDOWS * EVAL_WINDOW]


def logits_of(model, tokens):
    rows = []
    with torch.no_grad():
        for w in range(EVAL_WINDOWS):
            ids = torch.tensor([tokens[w * EVAL_WINDOW:(w + 1) * EVAL_WINDOW]])
            rows.append(model(ids).logits[0].double().numpy())
    return rows


def percentile(values, f):
    """strata's (llama.cpp's) rule: linear between ranks at f (n - 1); the median the middle value(s)."""
    v = np.sort(values)
    n = len(v)
    if f <= 0:
        return v[0]
    if f >= 1:
        return v[-1]
    if f == 0.5:
        return v[n // 2] if n % 2 else 0.5 * (v[n // 2] + v[n // 2 - 1])
    p = f * (n - 1)
    i = int(p)
    return (1 - (p - i)) * v[i] + (p - i) * v[min(i + 1, n - 1)]


def statistics(quantized, base, tokens):
    """The per-token quantities over each window's scored half, and their summary."""
    first = EVAL_WINDOW // 2
    kld, nll_q, nll_b, p_diff, same = [], [], [], [], []
    for w in range(EVAL_WINDOWS):
        for p in range(first, EVAL_WINDOW - 1):
            target = tokens[w * EVAL_WINDOW + p + 1]
            lq = quantized[w][p] - np.logaddexp.reduce(quantized[w][p])
            lb = base[w][p] - np.logaddexp.reduce(base[w][p])
            kld.append(float(np.sum(np.exp(lb) * (lb - lq))))
            nll_q.append(-lq[target])
            nll_b.append(-lb[target])
            p_diff.append(np.exp(lq[target]) - np.exp(lb[target]))
            same.append(int(np.argmax(lq) == np.argmax(lb)))
    kld, nll_q, nll_b, p_diff = map(np.array, (kld, nll_q, nll_b, p_diff))
    return {
        "scored_tokens": len(kld),
        "ppl_q": float(np.exp(nll_q.mean())),
        "ppl_base": float(np.exp(nll_b.mean())),
        "kld": float(kld.mean()),
        "kld_percentiles": {f"{100 * f:g}": float(percentile(kld, f)) for f in KLD_FRACTIONS},
        "p_diff_rms": float(np.sqrt(np.mean(p_diff ** 2))),
        "same_top": float(np.mean(same)),
    }


def calibrated(case):
    scheme, kv, config_name, algorithm = CASES[case]
    model = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.bfloat16)
    model.eval()
    flat = json.load(open(IDS))
    batches = [torch.tensor([flat[i:i + 128]]) for i in range(0, len(flat), 128)]

    def forward_loop(m):
        for ids in batches:
            m(ids)

    with torch.no_grad():
        mtq.quantize(model, quant_config(config_name, algorithm, kv), forward_loop)
    model = model.float()
    if scheme == "nvfp4":
        nvfp4_on_cpu(model)
    return model


def nvfp4_fake_quant(x, amax):
    """ModelOpt's NVFP4 numerics (its exporter's NVFP4QTensor): blocks of 16 with E4M3 scales
    under the global scale amax / (6 x 448), quantized and dequantized."""
    scale_2 = amax.float() / (6.0 * 448.0)
    q, scale, _ = NVFP4QTensor.quantize(x, 16, weights_scaling_factor_2=scale_2)
    return q.dequantize(dtype=x.dtype, scale=scale, double_scale=scale_2, block_sizes={-1: 16})


def nvfp4_on_cpu(model):
    """ModelOpt's NVFP4 fake quantization needs CUDA in its forward; on CPU each quantized
    linear gets the same numerics from NVFP4QTensor instead: its weight replaced once, its
    input fake-quantized by a hook with the calibrated amax, ModelOpt's quantizers then off."""
    for module in model.modules():
        wq, iq = getattr(module, "weight_quantizer", None), getattr(module, "input_quantizer", None)
        if wq is None or not wq.is_enabled:
            continue
        with torch.no_grad():
            module.weight.copy_(nvfp4_fake_quant(module.weight, wq.amax))
        input_amax = iq.amax.clone()
        module.register_forward_pre_hook(lambda m, args, a=input_amax: (nvfp4_fake_quant(args[0], a),))
        wq.disable()
        iq.disable()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    tokens = eval_tokens()
    base = transformers.AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32)
    base.eval()
    base_logits = logits_of(base, tokens)
    record = {
        "model": "llama-19m",
        "window": EVAL_WINDOW,
        "windows": EVAL_WINDOWS,
        "calibration": "tests/golden/e2e/calib-ids.json, one window per forward (as gen_golden_e2e.py)",
        "forward": "ModelOpt's fake-quantized model and the base, both in fp32 (transformers, eager)",
        "modelopt_version": modelopt.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "tokens": "eval-ids.json",
    }
    # One "case.statistic": value per line, for the shell test to read without a JSON parser.
    for case in ("fp8", "nvfp4", "int4"):
        stats = statistics(logits_of(calibrated(case), tokens), base_logits, tokens)
        print(case, json.dumps(stats))
        for key, value in stats.items():
            if isinstance(value, dict):
                for k, v in value.items():
                    record[f"{case}.{key}.{k}"] = v
            else:
                record[f"{case}.{key}"] = value
    if args.check:
        old = json.load(open(OUT))
        for key, value in record.items():
            if "." in key:
                print(key, old.get(key), value)
        return
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(TOKENS_OUT, "w") as f:
        json.dump(tokens, f)
        f.write("\n")
    with open(OUT, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} and {TOKENS_OUT}")


if __name__ == "__main__":
    main()
