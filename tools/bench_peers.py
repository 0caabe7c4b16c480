#!/usr/bin/env python3
"""strata quantize beside the reference libraries at a real layer size, on this machine's CPU.

A synthetic Llama-3-8B-shaped model (`strata generate`: hidden 4096, FFN 14336, 32 heads of
128, 8 KV heads, bf16, vocabulary 32000) of 4 decoder layers is quantized from the same
calibration token ids (8 windows of 256 by default, written to a JSON file strata reads
with --calib-format ids and the peers feed one window per forward) by:

  fp8   strata quantize --scheme fp8                 vs ModelOpt mtq.quantize(FP8_DEFAULT_CFG)
                                                        + export_hf_checkpoint
  fp8-weights   the same with --error-stats weights (no output errors: ModelOpt measures none)
  gptq  strata quantize --scheme int4 --algo gptq    vs llm-compressor oneshot(GPTQModifier
        --error-stats weights
                                                        W4A16, lm_head ignored) + save_compressed

Each run is a process of its own, measured with wait4 (wall time, CPU time, peak RSS);
strata and its peer alternate, --rounds times, and the table gives each run and the ratio
of the medians (the peer's over strata's: above 1 means strata is faster or leaner). Both
use every core (torch's default threads, strata's pool). The peers run in their venvs
(tools_venv.py: ModelOpt in build/tools-venv, llm-compressor in build/llmcompressor-venv);
CI never runs this.

Usage:
    python3 tools/bench_peers.py                       # fp8, fp8-weights and gptq, 2 rounds
    python3 tools/bench_peers.py --cases fp8 --rounds 3 --samples 8 --layers 4
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATA = os.path.join(ROOT, "build", "release", "strata")
WORK = os.path.join(ROOT, "build", "bench-peers")
LLAMA2_TOKENIZER = os.path.join(os.path.dirname(ROOT), "shared", "tokenizers", "llama2", "tokenizer.json")
# num_attention_heads given: `strata generate --hidden` alone counts heads of its default 32 dims
SHAPE = {"intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
         "vocab_size": 32000}
# Each peer's venv and packages (tools_venv.py: llm-compressor pins older libraries).
VENVS = {"modelopt": (os.path.join(ROOT, "build", "tools-venv"),
                      ["torch", "transformers", "nvidia-modelopt", "safetensors", "requests"]),
         "llmcompressor": (os.path.join(ROOT, "build", "llmcompressor-venv"), ["llmcompressor", "datasets"])}

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools_venv import venv_python  # noqa: E402


def peer_modelopt(model_dir, ids, seq, out):
    import torch
    import transformers
    import modelopt.torch.quantization as mtq
    from modelopt.torch.export import export_hf_checkpoint
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    model.eval()
    windows = [torch.tensor([ids[i:i + seq]]) for i in range(0, len(ids), seq)]

    def forward_loop(m):
        for w in windows:
            m(w)

    with torch.no_grad():
        mtq.quantize(model, mtq.FP8_DEFAULT_CFG, forward_loop)
    with torch.inference_mode():
        export_hf_checkpoint(model, export_dir=out)


def peer_llmcompressor(model_dir, ids, seq, out):
    import torch
    import transformers
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.quantization import GPTQModifier
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    # oneshot wants a processor even for tokenized data; the synthetic model has none, and
    # Llama-2's (vocabulary 32000, ../shared/tokenizers) fits it.
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_file=LLAMA2_TOKENIZER)
    windows = [ids[i:i + seq] for i in range(0, len(ids), seq)]
    data = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * seq for _ in windows]})
    recipe = GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"])
    oneshot(model=model, dataset=data, recipe=recipe, processor=tokenizer, max_seq_length=seq,
            num_calibration_samples=len(windows))
    model.save_pretrained(out, save_compressed=True)


# case: (peer, its function, strata's options, the peer's venv). fp8-weights: strata without
# the output-error statistics ModelOpt does not compute either (--error-stats weights).
PEERS = {"fp8": ("ModelOpt FP8", peer_modelopt, ["--scheme", "fp8"], "modelopt"),
         "fp8-weights": ("ModelOpt FP8", peer_modelopt, ["--scheme", "fp8", "--error-stats", "weights"], "modelopt"),
         "gptq": ("llm-compressor GPTQ W4A16", peer_llmcompressor,
                  ["--scheme", "int4", "--algo", "gptq", "--error-stats", "weights"], "llmcompressor")}


def measured(cmd):
    """Runs cmd; returns (wall s, CPU s, peak RSS GiB)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd[:4])}... failed ({proc.returncode}):\n{err[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1048576.0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default="fp8,fp8-weights,gptq")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the model in build/bench-peers")
    ap.add_argument("--child", nargs=5, metavar=("CASE", "MODEL", "IDS", "SEQ", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        case, model_dir, ids_file, seq, out = args.child
        PEERS[case][1](model_dir, json.load(open(ids_file)), int(seq), out)
        return
    if not os.access(STRATA, os.X_OK):
        sys.exit(f"bench: {STRATA} missing: run make first")
    os.makedirs(WORK, exist_ok=True)
    model = os.path.join(WORK, f"llama-8b-shape-{args.layers}-layers")
    if not os.path.exists(os.path.join(model, "model.safetensors")):
        shutil.rmtree(model, ignore_errors=True)
        subprocess.check_call([STRATA, "-q", "generate", "-o", model, "--arch", "llama", "--seed", "5", "--layers",
                               str(args.layers), "--hidden", "4096", "--config", json.dumps(SHAPE)])
    pythons = {case: venv_python(VENVS[PEERS[case][3]][1], VENVS[PEERS[case][3]][0]) for case in args.cases.split(",")}
    tokens = args.samples * args.seq
    ids = [(i * 7919 + 13) % SHAPE["vocab_size"] for i in range(tokens)]
    ids_file = os.path.join(WORK, "ids.json")
    json.dump(ids, open(ids_file, "w"))
    print(f"Llama-3-8B-shaped model, {args.layers} layers (hidden 4096, FFN 14336, bf16), {args.samples} x "
          f"{args.seq} calibration tokens, {os.cpu_count()} CPUs; wall s / CPU s / peak RSS GiB per run")
    for case in args.cases.split(","):
        name, _, strata_args, _ = PEERS[case]
        results = {"strata": [], name: []}
        for r in range(args.rounds):
            for who in ("strata", name):
                out = os.path.join(WORK, f"out-{case}-{'strata' if who == 'strata' else 'peer'}")
                shutil.rmtree(out, ignore_errors=True)
                if who == "strata":
                    cmd = [STRATA, "-q", "quantize", model, "-o", out, *strata_args, "--calib", ids_file,
                           "--calib-format", "ids", "--calib-samples", str(args.samples), "--calib-seq",
                           str(args.seq)]
                else:
                    cmd = [pythons[case], os.path.abspath(__file__), "--child", case, model, ids_file,
                           str(args.seq), out]
                wall, cpu, rss = measured(cmd)
                results[who].append((wall, cpu, rss))
                print(f"  {case:11s} round {r + 1} {who:28s} {wall:8.1f} s {cpu:8.1f} CPU s {rss:6.2f} GiB", flush=True)
                shutil.rmtree(out, ignore_errors=True)
        med = {who: [statistics.median(x[i] for x in runs) for i in range(3)] for who, runs in results.items()}
        s, p = med["strata"], med[name]
        print(f"{case}: {name} / strata (medians): wall {p[0] / s[0]:.2f}x, CPU {p[1] / s[1]:.2f}x, "
              f"peak RSS {p[2] / s[2]:.2f}x  (strata {s[0]:.1f} s {s[2]:.2f} GiB; {name} {p[0]:.1f} s "
              f"{p[2]:.2f} GiB)", flush=True)
    if not args.keep:
        shutil.rmtree(model, ignore_errors=True)


if __name__ == "__main__":
    main()
