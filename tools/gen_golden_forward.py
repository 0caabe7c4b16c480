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
    python3 tools/gen_golden_forward.py --only synth-glm4-moe   # one of them
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
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "forward")
PACKAGES = ["torch", "transformers", "tokenizers"]

MODELS = ["stories260K-hf", "stories260K-hf-bf16", "stories260K-moe-mixtral-synthetic", "llama-19m", "qwen3moe-47m"]
TRAINED = {"llama-19m", "qwen3moe-47m"}
# models whose golden file also holds transformers' perplexity over PPL_WINDOWS windows
PERPLEXITY = TRAINED | {"synth-deepseek-v3"}
# Synthetic models strata generates itself (`strata generate`, deterministic bytes), to cover
# what the shared models lack: (name, arch, stacked experts, text merged into config.json).
# The C test regenerates each from the metadata and applies the same config patch.
SYNTHETIC = [
    ("synth-qwen2", "qwen2", False, ""),
    ("synth-mistral-window", "mistral", False, '"sliding_window": 24'),
    ("synth-llama3-rope", "llama", False,
     '"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, '
     '"high_freq_factor": 4.0, "original_max_position_embeddings": 64}'),
    ("synth-qwen2-moe", "qwen2_moe", False, ""),
    ("synth-qwen3-moe-stacked", "qwen3_moe", True, ""),
    ("synth-mixtral-stacked", "mixtral", True, ""),
    # GLM-4.5's layer: a dense first layer, sigmoid routing over 4 groups of 2 experts (best 2
    # eligible) with a correction bias, x2.5 scaling, an ungated shared expert, q/k/v biases
    # without an o bias, and RoPE on half of each head.
    ("synth-glm4-moe", "glm4_moe", False, ""),
    # The same in transformers v5's stacked layout, with a multi-token-prediction layer in the
    # file (transformers skips it; strata must too).
    ("synth-glm4-moe-stacked-mtp", "glm4_moe", True, "", 1),
    # DeepSeek-V3's layer: latent attention (q rank, kv rank, rope part of each head in
    # interleaved pairs), YaRN with mscale on the softmax scale, a dense first layer, 16
    # experts in 4 groups of 4 (best 2 eligible), top-4, x2.5, a shared expert.
    ("synth-deepseek-v3", "deepseek_v3", False, ""),
    # The other MLA variants: a plain q_proj (q_lora_rank null), rotate-half rope, YaRN
    # whose mscale differs from mscale_all_dim (cos/sin scaled), stacked experts, an MTP layer.
    ("synth-deepseek-v3-stacked-mtp", "deepseek_v3", True,
     '"q_lora_rank": null, "rope_interleave": false, "rope_scaling": {"type": "yarn", "factor": 32.0, '
     '"original_max_position_embeddings": 64, "mscale": 0.707, "mscale_all_dim": 1.0}', 1),
]
SYNTH_SEED, SYNTH_LAYERS = 7, 2
STRATA = os.path.join(ROOT, "build", "release", "strata")
BATCH, SEQ_LEN = 3, 77
POSITIONS = [0, 1, 38, 76]
LOGIT_COLUMNS = 2048
PPL_WINDOW, PPL_WINDOWS = 256, 4


from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import torch  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def save_file(tensors, path, metadata):
    """Writes a safetensors file with keys in a fixed order, so that the same inputs give the
    same bytes (the safetensors package orders __metadata__ by a randomized hash map)."""
    dtypes = {torch.float32: "F32", torch.int32: "I32"}
    header, blobs, offset = {"__metadata__": dict(sorted(metadata.items()))}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        blob = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(blobs))


def wiki_text():
    with open(os.path.join(SHARED, "data", "wikitext-2-raw", "wiki.test.raw"), "rb") as f:
        return f.read().decode("utf-8")


def encode(model_dir, text):
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    return tok.encode(text).ids


def load(model_dir):
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    # Every parameter must come from the file: a missing one would be randomly initialized.
    assert not info["missing_keys"] and not info.get("mismatched_keys"), info
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


def synthesize(name, arch, stacked, patch, mtp=0):
    """Generates a synthetic model with the strata CLI and applies the config patch."""
    import tempfile
    model_dir = os.path.join(tempfile.mkdtemp(prefix="strata-golden-"), name)
    cmd = [STRATA, "-q", "generate", "-o", model_dir, "--arch", arch, "--seed", str(SYNTH_SEED),
           "--layers", str(SYNTH_LAYERS)] + (["--mtp-layers", str(mtp)] if mtp else [])
    # the patch's keys replace generated ones before the tensors are laid out
    patch_args = ["--config", "{" + patch + "}"] if patch else []
    subprocess.check_call(cmd + (["--stacked-experts"] if stacked else []) + patch_args)
    return model_dir


@torch.no_grad()
def golden(name, model_dir=None, synthetic=None):
    model_dir = model_dir or os.path.join(SHARED, "models", name)
    model = load(model_dir)
    if synthetic:
        g = torch.Generator().manual_seed(1)
        ids = torch.randint(0, model.config.vocab_size, (BATCH * 500,), generator=g).tolist()
    else:
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
    if synthetic:
        arch, stacked, patch, mtp = (*synthetic, 0)[:4] if len(synthetic) == 3 else synthetic
        metadata.update(synth_arch=arch, synth_seed=str(SYNTH_SEED), synth_layers=str(SYNTH_LAYERS),
                        synth_stacked="1" if stacked else "0", config_patch=patch)
        if mtp:
            metadata.update(synth_mtp_layers=str(mtp))
    if name in PERPLEXITY:
        ppl_ids = ids[:PPL_WINDOW * PPL_WINDOWS]
        tensors["ppl_tokens"] = torch.tensor(ppl_ids, dtype=torch.int32)
        metadata.update(ppl_window=str(PPL_WINDOW), ppl_windows=str(PPL_WINDOWS),
                        ppl=repr(perplexity(model, ppl_ids, PPL_WINDOW, PPL_WINDOWS)))
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name + ".safetensors")
    save_file(tensors, path, metadata=metadata)
    print(f"{path}: {json.dumps(metadata)}")


def full_ppl(window):
    torch.set_num_threads(os.cpu_count())
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
    parser.add_argument("--only", help="write only this golden file (a model or synthetic name)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # deterministic reductions: the same bytes on every run
    for name in MODELS:
        if not args.only or args.only == name:
            golden(name)
    for name, arch, stacked, patch, *mtp in SYNTHETIC:
        mtp = mtp[0] if mtp else 0
        if not args.only or args.only == name:
            golden(name, synthesize(name, arch, stacked, patch, mtp), (arch, stacked, patch, mtp))
    if args.full_ppl:
        full_ppl(args.window)


if __name__ == "__main__":
    main()
