#!/usr/bin/env python3
"""llama.cpp's own KL-divergence numbers for llama-19m in GGUF Q8_0 and Q4_K_M, to put beside strata's.

Optional: neither CI nor `make test` needs it, and nothing in strata depends on it. It needs
PyPI (for the llama-cpp-python source package and sentencepiece), cmake and a C++ compiler.

What it does, each step cached under build/llamacpp/ (delete that folder to start over):

  1. `pip download --no-binary :all: --no-deps llama-cpp-python` (the newest version that
     downloads) and unpacks it: the llama.cpp sources are its vendor/llama.cpp.
  2. Builds llama.cpp's llama-quantize and llama-perplexity (cmake, Release, GGML_NATIVE=ON
     but without AMX, under `nice -n 19`, -j2) in build/llamacpp/build. AMX is left out because
     on this project's machines (VMs whose CPU reports AMX-INT8) ggml's AMX matmul for Q8_0 dies
     of SIGILL at its first tile instruction; without it ggml uses its AVX-512 kernels.
  3. Converts the model to a bf16 GGUF with vendor/llama.cpp/convert_hf_to_gguf.py (run in
     build/tools-venv; an f32 GGUF instead if llama-perplexity cannot run the bf16 one).
  4. llama-quantize to Q8_0 and Q4_K_M, keeping what it printed about tensors that fell back
     to another type (hidden 384 is not a multiple of the K-quants' 256-wide blocks).
  5. llama-perplexity over WikiText-2 test: on the base GGUF with --kl-divergence-base
     (saves the base log-probabilities, prints its perplexity), then on each quantized GGUF
     with --kl-divergence. Prints a markdown table of llama.cpp's statistics with the
     versions and the exact commands, and saves it to build/llamacpp/kld_table.md (the logs
     of every step are in build/llamacpp/logs, the fallback lines in fallbacks-*.txt).

llama.cpp's evaluation is not strata's `strata eval` token for token, so the numbers are
comparable in kind only: llama.cpp tokenizes the whole text and cuts it into chunks of -c
tokens, but overwrites the first token of every chunk with BOS; strata cuts its windows from
the whole text as they fall (BOS only at the start of the text). Both score the second half of
each window (positions n/2 + 1 to n - 1), so 200 chunks of 256 score 25,400 tokens. llama.cpp
runs its own kernels (bf16 base, its quantization formats, activations quantized to 8 bits in
the quantized matmuls). It also stores the base log-probabilities as 16-bit steps reaching only
16 below each position's top logit, lower ones clamped there: its PPL(base) and PPL ratio, taken
from that file, read the clamped values (about 0.6% of the scored tokens for llama-19m), so
the table adds the ratio to the base run's own perplexity over the same tokens.

Usage:
    python3 tools/llamacpp_kld.py                      # context 256, 200 chunks
    python3 tools/llamacpp_kld.py --ctx 512 --chunks 100 --threads 2
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools_venv import ensure_venv  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "build", "llamacpp")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
MODEL = os.path.join(SHARED, "models", "llama-19m")
TEXT = os.path.join(SHARED, "data", "wikitext-2-raw", "wiki.test.raw")
QUANTS = ["Q8_0", "Q4_K_M"]
NICE = ["nice", "-n", "19"]
TARGETS = ["llama-quantize", "llama-perplexity"]


# ---------------------------------------------------------------- running commands

def run_logged(name, cmd, outputs=()):
    """Runs cmd once, its output in OUT/logs/NAME.log; later calls with the same command return
    that log, as long as the outputs exist.

    The log's first line is the command, its last the elapsed seconds; it is written under a
    temporary name and renamed only when the command succeeded, so a log means a finished run.
    Returns (log text, True when it came from the cache). Raises CalledProcessError on failure.
    """
    log = os.path.join(OUT, "logs", name + ".log")
    cached = read(log)
    if cached and log_command(cached) == shlex.join(cmd) and all(os.path.exists(p) for p in outputs):
        return cached, True
    os.makedirs(os.path.dirname(log), exist_ok=True)
    print(f"[{name}] {shlex.join(cmd)}", flush=True)
    start = time.time()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.stdout.decode("utf-8", errors="replace")
    elapsed = time.time() - start
    body = f"$ {shlex.join(cmd)}\n{text}\n# elapsed: {elapsed:.1f} s\n"
    with open(log + ".tmp", "w", encoding="utf-8") as f:
        f.write(body)
    if proc.returncode != 0:
        print("\n".join(text.splitlines()[-40:]), file=sys.stderr)
        print(f"[{name}] failed (exit {proc.returncode}); full output in {log}.tmp", file=sys.stderr)
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    os.replace(log + ".tmp", log)
    print(f"[{name}] done in {elapsed:.1f} s", flush=True)
    return body, False


def read(path):
    """A log's text, or None when there is none."""
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def log_command(text):
    """The command line a run_logged log starts with."""
    return text.splitlines()[0][2:]


def log_elapsed(text):
    """The elapsed seconds a run_logged log ends with."""
    m = re.search(r"^# elapsed: ([\d.]+) s$", text, re.M)
    return float(m.group(1)) if m else None


# ---------------------------------------------------------------- step 1: sources

def version_key(path):
    """Sort key of an sdist path by its version (packaging, which transformers brings, parses it)."""
    from packaging.version import Version
    return Version(re.search(r"llama_cpp_python-(.+)\.tar\.gz$", path).group(1))


def pypi_versions():
    """llama-cpp-python's versions on PyPI, newest first (pip index versions)."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "llama-cpp-python"],
                         capture_output=True, text=True).stdout
    m = re.search(r"Available versions: (.+)", out)
    return [v.strip() for v in m.group(1).split(",")] if m else []


def download_sdist():
    """The llama-cpp-python source package in OUT/sdist: the newest version that downloads.

    Returns its path and the log of the pip download that brought it."""
    sdist_dir = os.path.join(OUT, "sdist")
    log = os.path.join(OUT, "logs", "pip-download.log")
    have = glob.glob(os.path.join(sdist_dir, "llama_cpp_python-*.tar.gz"))
    if have:
        return max(have, key=version_key), read(log)
    if os.path.exists(log):  # a download whose sdist has since been deleted
        os.remove(log)
    base = NICE + [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-d", sdist_dir]
    try:  # unpinned: pip picks the newest
        run_logged("pip-download", base + ["llama-cpp-python"])
    except subprocess.CalledProcessError:
        for v in pypi_versions()[1:6]:  # the next older ones, in turn
            try:
                run_logged("pip-download", base + [f"llama-cpp-python=={v}"])
                break
            except subprocess.CalledProcessError:
                continue
    have = glob.glob(os.path.join(sdist_dir, "llama_cpp_python-*.tar.gz"))
    if not have:
        sys.exit("could not download a llama-cpp-python source package (see build/llamacpp/logs)")
    return max(have, key=version_key), read(log)


def extract(sdist):
    """Unpacks the sdist into OUT/src; returns the package folder."""
    name = os.path.basename(sdist)[:-len(".tar.gz")]
    dest = os.path.join(OUT, "src", name)
    if not os.path.isdir(os.path.join(dest, "vendor", "llama.cpp", "tools", "perplexity")):
        print(f"extracting {sdist}", flush=True)
        with tarfile.open(sdist) as tar:
            tar.extractall(os.path.join(OUT, "src"), filter="data")
    return dest


def versions(pkg):
    """llama-cpp-python's version and the llama.cpp commit its CHANGELOG says it vendors."""
    with open(os.path.join(pkg, "PKG-INFO"), encoding="utf-8") as f:
        version = re.search(r"^Version: (\S+)", f.read(), re.M).group(1)
    commit = None
    changelog = os.path.join(pkg, "CHANGELOG.md")
    if os.path.exists(changelog):
        with open(changelog, encoding="utf-8") as f:
            text = f.read()
        # The section of this version, up to the next "## [" heading.
        section = re.search(r"^## \[" + re.escape(version) + r"\](.*?)(?=^## \[|\Z)", text, re.M | re.S)
        m = re.search(r"llama\.cpp@([0-9a-f]{7,40})", section.group(1) if section else "")
        commit = m.group(1) if m else None
    return version, commit


# ---------------------------------------------------------------- step 2: build

def build(llama_dir, commit):
    """Builds llama-quantize and llama-perplexity; returns their folder and the build logs."""
    build_dir = os.path.join(OUT, "build")
    bins = [os.path.join(build_dir, "bin", t) for t in TARGETS]
    configure = ["cmake", "-S", llama_dir, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
                 "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DGGML_NATIVE=ON",
                 "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=OFF"]
    # No AMX even where -march=native finds it: on this machine (a VM whose CPU reports AMX-INT8)
    # ggml's AMX kernel for Q8_0 dies of SIGILL on its first tile instruction (tilezero).
    no_amx = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    configure += [f"-DCMAKE_C_FLAGS={no_amx}", f"-DCMAKE_CXX_FLAGS={no_amx}"]
    # The sdist has no git history: name the commit its CHANGELOG gives so the binaries print it.
    if commit:
        configure.append(f"-DLLAMA_BUILD_COMMIT={commit}")
    text, cached = run_logged("cmake-configure", NICE + configure, [os.path.join(build_dir, "CMakeCache.txt")])
    logs = [text]
    if not cached:  # new settings: compile again
        for b in bins:
            if os.path.exists(b):
                os.remove(b)
    compile_ = NICE + ["cmake", "--build", build_dir, "--config", "Release", "-j2", "--target", *TARGETS]
    logs.append(run_logged("cmake-build", compile_, bins)[0])
    return os.path.join(build_dir, "bin"), logs


# ---------------------------------------------------------------- step 3: conversion

def gguf_path(model, kind):
    """OUT/<model folder name>-<kind>.gguf."""
    return os.path.join(OUT, f"{os.path.basename(os.path.normpath(model))}-{kind}.gguf")


def convert(llama_dir, model, outtype):
    """The model as a GGUF of outtype (bf16 or f32), written through a temporary name."""
    gguf = gguf_path(model, outtype)
    cmd = NICE + [sys.executable, os.path.join(llama_dir, "convert_hf_to_gguf.py"), model,
                  "--outtype", outtype, "--outfile", gguf + ".tmp"]
    text, cached = run_logged(f"convert-{outtype}", cmd, [gguf])
    if not cached:
        os.replace(gguf + ".tmp", gguf)
    return gguf, text


# ---------------------------------------------------------------- step 4: quantization

def quantize(bin_dir, model, base_gguf, quant, threads):
    """base_gguf quantized to quant with llama-quantize; returns the file and the log."""
    out = gguf_path(model, quant)
    cmd = NICE + [os.path.join(bin_dir, "llama-quantize"), base_gguf, out + ".tmp", quant, str(threads)]
    text, cached = run_logged(f"quantize-{quant}", cmd, [out])
    if not cached:
        os.replace(out + ".tmp", out)
    return out, text


def count(items):
    """{item: how many times}, in first-seen order."""
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


def quant_summary(text):
    """What llama-quantize said: its fallback lines (and their count by type), the tensor types, the size."""
    fallbacks = [l.strip() for l in text.splitlines() if "falling back" in l]
    total = re.search(r"WARNING: (\d+ of \d+ tensor\(s\) required fallback quantization)", text)
    moves = re.findall(r"required for type\s+(\w+)\)\s*->\s*falling back to\s+(\w+)", text)
    types = re.findall(r"type =\s*(\w+),\s*(?:converting to (\w+)|size)", text)
    size = re.search(r"quant size\s*=\s*([\d.]+) MiB \(([\d.]+) BPW\)", text)
    return {"fallbacks": fallbacks, "total": total.group(1) if total else "no tensor required fallback",
            "moves": count(f"{a} -> {b}" for a, b in moves),
            "types": count(conv or orig for orig, conv in types),
            "size": f"{size.group(1)} MiB, {size.group(2)} BPW" if size else "?"}


def save_fallbacks(quant, summary):
    """The fallback lines llama-quantize printed, in OUT/fallbacks-QUANT.txt; returns the path."""
    path = os.path.join(OUT, f"fallbacks-{quant}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in summary["fallbacks"]) + summary["total"] + "\n")
    return path


# ---------------------------------------------------------------- step 5: perplexity and KLD

def perplexity_cmd(bin_dir, gguf, args, extra):
    """llama-perplexity on gguf with the shared settings (context, chunks, batch, threads)."""
    return NICE + [os.path.join(bin_dir, "llama-perplexity"), "-m", gguf, "-c", str(args.ctx),
                   "--chunks", str(args.chunks), "-b", str(args.ctx), "-t", str(args.threads), *extra]


def run_base(bin_dir, gguf, outtype, args, kld_file):
    """The base GGUF's perplexity, saving its log-probabilities to kld_file."""
    cmd = perplexity_cmd(bin_dir, gguf, args, ["-f", args.text, "--kl-divergence-base", kld_file])
    return run_logged(f"perplexity-base-{outtype}", cmd, [kld_file])[0]


def run_kld(bin_dir, gguf, args, kld_file, quant):
    """A quantized GGUF against the saved base log-probabilities."""
    cmd = perplexity_cmd(bin_dir, gguf, args, ["--kl-divergence-base", kld_file, "--kl-divergence"])
    return run_logged(f"perplexity-kld-{quant}", cmd, [kld_file])[0]


STATS = {  # column: the line llama-perplexity prints it on (value, and ± where it prints one)
    "Mean PPL(Q)": r"Mean PPL\(Q\)\s*:\s*([\d.]+)\s*±\s*([\d.]+)",
    "PPL(base)": r"Mean PPL\(base\)\s*:\s*([\d.]+)\s*±\s*([\d.]+)",
    "PPL ratio": r"Mean PPL\(Q\)/PPL\(base\)\s*:\s*([\d.]+)\s*±\s*([\d.]+)",
    "Mean KLD": r"Mean\s+KLD:\s*([-\d.]+)\s*±\s*([\d.]+)",
    "Median KLD": r"Median\s+KLD:\s*([-\d.]+)()",
    "99% KLD": r"99\.0%\s+KLD:\s*([-\d.]+)()",
    "RMS Δp": r"RMS Δp\s*:\s*([\d.]+)\s*±\s*([\d.]+)\s*%",
    "Same top p": r"Same top p:\s*([\d.]+)\s*±\s*([\d.]+)\s*%",
}
PERCENT = {"RMS Δp", "Same top p"}


def parse_stats(text):
    """The STATS columns as printed strings ('x ± y', with % where llama.cpp prints one)."""
    row = {}
    for col, pattern in STATS.items():
        m = re.search(pattern, text)
        if not m:
            row[col] = "?"
            continue
        cell = m.group(1) + (f" ± {m.group(2)}" if m.group(2) else "")
        row[col] = cell + (" %" if col in PERCENT else "")
    return row


def final_ppl(text):
    """The base run's 'Final estimate: PPL = x +/- y' as (x, y) strings."""
    m = re.search(r"Final estimate: PPL = ([\d.]+) \+/- ([\d.]+)", text)
    return (m.group(1), m.group(2)) if m else ("?", "?")


def ratio_to_base(row, base_ppl):
    """Mean PPL(Q) over the base run's own perplexity (see the report's note on PPL(base))."""
    try:
        return f"{float(row['Mean PPL(Q)'].split()[0]) / float(base_ppl):.6f}"
    except ValueError:
        return "?"


def system_info(text):
    """llama.cpp's system_info line, without its log timestamp."""
    m = re.search(r"system_info: (.*)", text)
    return m.group(1).strip() if m else "?"


def binary_version(bin_dir):
    """What llama-perplexity --version prints (version, build number, commit, compiler)."""
    proc = subprocess.run([os.path.join(bin_dir, "llama-perplexity"), "--version"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return "; ".join(l.strip() for l in proc.stdout.splitlines() if l.strip())


# ---------------------------------------------------------------- report

def report(args, info, rows, quant_logs, base, commands, timings):
    """The markdown report: versions, the table, the fallbacks, the commands and the times."""
    title = f"{os.path.basename(os.path.normpath(args.model))}, {os.path.basename(args.text)}"
    lines = [f"# llama.cpp KL divergence: {title}, -c {args.ctx}, --chunks {args.chunks}", "",
             f"- llama-cpp-python {info['version']} (PyPI sdist); vendored llama.cpp commit "
             f"{info['commit'] or 'unknown'} (from its CHANGELOG: the sdist has no git history, so the "
             "build number below is not llama.cpp's release number)",
             f"- llama-perplexity --version: {info['binary']}",
             f"- system_info: {info['system']}",
             f"- base: {base['name']} GGUF; its own run's perplexity (Final estimate): "
             f"{base['ppl'][0]} ± {base['ppl'][1]}", ""]
    cols = ["quant", "size"] + list(STATS) + ["PPL(Q) / base run PPL"]
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "---|" * len(cols))
    for quant, row in rows.items():
        cells = [quant, quant_logs[quant]["size"]] + [row[c] for c in STATS] + [ratio_to_base(row, base["ppl"][0])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "PPL(base) and PPL ratio are llama.cpp's, from the saved base log-probabilities: it stores "
              "them as 16-bit steps down to 16 below the top logit and clamps lower ones there, so a "
              "correct token far below the top counts as likelier than it was and PPL(base) comes out "
              "below the base run's own perplexity. The last column divides by that one instead "
              "(computed here, same chunks and positions).", ""]
    for quant, q in quant_logs.items():
        types = ", ".join(f"{t} {n}" for t, n in q["types"].items())
        moves = ", ".join(f"{m} x{n}" for m, n in q["moves"].items()) or "none"
        lines.append(f"- {quant}: tensor types {types}; {q['total']} ({moves}); lines in {q['file']}")
    lines += ["", "Commands:", "", "```"] + commands + ["```", "", "Seconds each step took when it ran "
              "(nice -n 19 on a shared 2-core machine):", ""]
    lines += [f"- {name}: {t:.1f}" for name, t in timings.items() if t is not None]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=MODEL, help="HF model folder (default: shared llama-19m)")
    p.add_argument("--text", default=TEXT, help="evaluation text (default: WikiText-2 raw test)")
    p.add_argument("--ctx", type=int, default=256, help="tokens per chunk (-c and -b)")
    p.add_argument("--chunks", type=int, default=200, help="chunks evaluated (--chunks)")
    p.add_argument("--threads", type=int, default=2, help="threads for llama-quantize and llama-perplexity")
    return p.parse_args()


def main():
    ensure_venv(["sentencepiece"])
    args = parse_args()
    os.makedirs(OUT, exist_ok=True)
    sdist, download_log = download_sdist()
    pkg = extract(sdist)
    llama_dir = os.path.join(pkg, "vendor", "llama.cpp")
    version, commit = versions(pkg)
    bin_dir, build_logs = build(llama_dir, commit)
    logs = {"download": download_log, "configure": build_logs[0], "build": build_logs[1]}
    if download_log is None:  # the sdist was put there by hand
        del logs["download"]

    # The base: bf16 as the model is, f32 if llama-perplexity cannot run bf16 here.
    kld_file = os.path.join(OUT, "base.kld")
    for outtype in ["bf16", "f32"]:
        base_gguf, logs[f"convert-{outtype}"] = convert(llama_dir, args.model, outtype)
        try:
            logs["base"] = run_base(bin_dir, base_gguf, outtype, args, kld_file)
            break
        except subprocess.CalledProcessError:
            if outtype == "f32":
                raise
            print("llama-perplexity failed on the bf16 GGUF; trying f32", file=sys.stderr)

    rows, quant_logs = {}, {}
    for quant in QUANTS:
        gguf, logs[f"quantize-{quant}"] = quantize(bin_dir, args.model, base_gguf, quant, args.threads)
        quant_logs[quant] = quant_summary(logs[f"quantize-{quant}"])
        quant_logs[quant]["file"] = os.path.relpath(save_fallbacks(quant, quant_logs[quant]), ROOT)
        logs[f"kld-{quant}"] = run_kld(bin_dir, gguf, args, kld_file, quant)
        rows[quant] = parse_stats(logs[f"kld-{quant}"])

    info = {"version": version, "commit": commit,
            "binary": binary_version(bin_dir), "system": system_info(logs["base"])}
    base = {"name": outtype, "ppl": final_ppl(logs["base"])}
    commands = [log_command(t) for t in logs.values()]
    timings = {k: log_elapsed(t) for k, t in logs.items()}
    text = report(args, info, rows, quant_logs, base, commands, timings)
    with open(os.path.join(OUT, "kld_table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
