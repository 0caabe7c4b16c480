#!/usr/bin/env python3
"""Golden forward-pass outputs of the models in ../shared/models, from Hugging Face transformers.

For each model, loads it with AutoModelForCausalLM in fp32 with eager attention, runs a
batch of real text (BATCH sequences of SEQ_LEN tokens, a length that is not a multiple of
16) and records, at a few positions, every decoder layer's output and the final logits.
For the perplexity check it also evaluates WikiText-2 test windows. Writes
tests/golden/forward/<model>.safetensors, read by tests/unit/test_forward_golden.c. CI never
runs this script.

Tensors in each golden file:
    tokens      I32 (BATCH, SEQ_LEN)       the input ids
    positions   I32 (N_POS,)               the positions recorded
    hidden.<i>  F32 (BATCH, N_POS, hidden) output of decoder layer i (before the final norm)
    logits      F32 (BATCH, N_POS, n)      logits[..., :n], n = min(vocab, LOGIT_COLUMNS)
    ppl_tokens  I32 (PPL_WINDOWS * PPL_WINDOW,)  (trained models only) wiki.test.raw ids
metadata: model, transformers/torch versions, ppl_window, ppl_windows, ppl (fp32 perplexity
over ppl_tokens computed as strata_eval_perplexity does).

Usage:
    python3 tools/gen_golden_forward.py                 # write the golden files
    python3 tools/gen_golden_forward.py --full-ppl      # also print the perplexity of the whole
                                                        # wiki.test.raw (llama-19m) and write its
                                                        # ids to build/wiki.test.llama-19m.ids
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "build", "tools-venv")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "forward")
PACKAGES = ["torch", "transformers", "tokenizers", "safetensors"]

MODELS = ["stories260K-hf", "stories260K-hf-bf16", "stories260K-moe-mixtral-synthetic", "llama-19m", "qwen3moe-47m"]
TRAINED = {"llama-19m", "qwen3moe-47m"}
BATCH, SEQ_LEN = 3, 77
POSITIONS = [0, 1, 38, 76]
LOGIT_COLUMNS = 2048
PPL_WINDOW, PPL_WINDOWS = 256, 4


def ensure_venv():
    """Re-executes this script inside build/tools-venv, creating it when missing."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([python, "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(python, [python, *sys.argv])


ensure_venv()

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def wiki_text():
    with open(os.path.join(SHARED, "data", "wikitext-2-raw", "wiki.test.raw"), "rb") as f:
        return f.read().decode("utf-8")


def encode(model_dir, text):
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    return tok.encode(text).ids


def load(model_dir):
    model = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    return model


@torch.no_grad()
def perplexity(model, ids, window, n_windows):
    """Mean NLL over non-overlapping windows, every position but the last predicting."""
    nll, count = 0.0, 0
    for w in range(n_windows):
        x = torch.tensor([ids[w * window:(w + 1) * window]])
        logits = model(x).logits.double()[0, :-1]
        nll += torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum").item()
        count += window - 1
    return math.exp(nll / count)


@torch.no_grad()
def golden(name):
    model_dir = os.path.join(SHARED, "models", name)
    model = load(model_dir)
    ids = encode(model_dir, wiki_text()[:200000])
    batch = torch.tensor([ids[i * 500:i * 500 + SEQ_LEN] for i in range(BATCH)], dtype=torch.int64)
    outputs = {}
    layers = model.model.layers

    def keep(index):
        def hook(_module, _args, out):
            hidden = out[0] if isinstance(out, tuple) else out
            outputs[index] = hidden[:, POSITIONS, :].float().clone()
        return hook

    handles = [layer.register_forward_hook(keep(i)) for i, layer in enumerate(layers)]
    logits = model(batch).logits
    for h in handles:
        h.remove()
    tensors = {
        "tokens": batch.to(torch.int32).contiguous(),
        "positions": torch.tensor(POSITIONS, dtype=torch.int32),
        "logits": logits[:, POSITIONS, :LOGIT_COLUMNS].float().contiguous(),
    }
    for i in range(len(layers)):
        tensors[f"hidden.{i}"] = outputs[i].contiguous()
    metadata = {"model": name, "transformers": transformers.__version__, "torch": torch.__version__}
    if name in TRAINED:
        ppl_ids = ids[:PPL_WINDOW * PPL_WINDOWS]
        tensors["ppl_tokens"] = torch.tensor(ppl_ids, dtype=torch.int32)
        metadata.update(ppl_window=str(PPL_WINDOW), ppl_windows=str(PPL_WINDOWS),
                        ppl=repr(perplexity(model, ppl_ids, PPL_WINDOW, PPL_WINDOWS)))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".safetensors")
    save_file(tensors, path, metadata=metadata)
    print(f"{path}: {json.dumps(metadata)}")


def full_ppl(window):
    name = "llama-19m"
    model_dir = os.path.join(SHARED, "models", name)
    model = load(model_dir)
    ids = encode(model_dir, wiki_text())
    out = os.path.join(ROOT, "build", f"wiki.test.{name}.ids")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(" ".join(map(str, ids)) + "\n")
    n_windows = len(ids) // window
    print(f"{name}: {len(ids)} tokens -> {out}")
    print(f"transformers fp32 perplexity, {n_windows} windows of {window}: "
          f"{perplexity(model, ids, window, n_windows):.4f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full-ppl", action="store_true")
    parser.add_argument("--window", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in MODELS:
        golden(name)
    if args.full_ppl:
        full_ppl(args.window)


if __name__ == "__main__":
    main()
