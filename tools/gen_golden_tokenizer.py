#!/usr/bin/env python3
"""Golden token ids from Hugging Face `tokenizers`, for strata's tokenizer (src/tokenizer/).

Writes the text set (tests/golden/tokenizer/texts/*.txt, raw bytes; one holds invalid UTF-8)
and, for every distinct tokenizer.json in ../shared/tokenizers and ../shared/models, a file
tests/golden/tokenizer/<name>.json with:
    paths       the ../shared directories holding this exact tokenizer.json
    texts       {text name: {"ids": encode(text).ids, "decoded": decode(ids)}}
                (add_special_tokens=True; decode with skip_special_tokens=True)
    plain_ids   {text name: ids without special tokens} for the texts that hold no added token
    transformers_ids  AutoTokenizer(dir)(prose).input_ids: the BOS/EOS policy transformers
                applies (tokenizer_config.json on top of the post-processor)
    wiki        count and FNV-1a 64 (over little-endian int32 ids) of encode(wiki.test.raw)
Text bytes that are not UTF-8 are decoded with errors="replace" (U+FFFD per maximal invalid
subsequence), which is what strata does to calibration text.

Also measures single-thread encode throughput on wiki.test.raw and writes it to
build/bench-hf-tokenizers.json, which `bench_tokenizer` prints beside its own numbers.

Usage: python3 tools/gen_golden_tokenizer.py [--bench-only]
CI never runs this script.
"""
import argparse
import hashlib
import json
import os
import random
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
OUT = os.path.join(ROOT, "tests", "golden", "tokenizer")
PACKAGES = ["tokenizers", "transformers"]
DIRS = ["tokenizers/llama2", "tokenizers/llama3", "tokenizers/qwen3", "models/llama-19m",
        "models/qwen3moe-47m", "models/stories260K-hf", "models/stories260K-hf-bf16",
        "models/stories260K-moe-mixtral-synthetic"]
WIKI = os.path.join(SHARED, "data", "wikitext-2-raw", "wiki.test.raw")

os.environ["RAYON_NUM_THREADS"] = "1"        # single-thread throughput, like bench_tokenizer
os.environ["TOKENIZERS_PARALLELISM"] = "false"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tools_venv import ensure_venv  # noqa: E402

ensure_venv(PACKAGES)

import tokenizers  # noqa: E402
import transformers  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

# The text set, written for strata. Bytes, so that one entry can hold invalid UTF-8.
TEXTS = {
    "prose": (
        "The river had been rising for three days before anyone in the valley thought to "
        "move the grain. By Thursday the lower fields were a sheet of brown water, and the "
        "miller's boy, who was eleven and afraid of nothing he could name, rowed out to "
        "fetch the ledger from the office roof. He came back soaked, proud, and without an oar."
    ).encode(),
    "code": (
        "static int clamp(int v, int lo, int hi)\n{\n\treturn v < lo ? lo : (v > hi ? hi : v);\n}\n\n"
        "def mean(xs: list[float]) -> float:\n    if not xs:\n        raise ValueError(\"empty\")\n"
        "    return sum(xs) / len(xs)  # O(n)\n\nfor (size_t i = 0; i < n; ++i) { y[i] += a*x[i]; }\n"
        "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;\n"
    ).encode(),
    "numbers": (
        "pi=3.14159265, e=2.718, 1,234,567.89 and 12345678901234567890; dates 2026-11-21 "
        "and 21/11/2026; hex 0x1F 0xDEADBEEF; 1e-9, -42, +7, 50%, $19.99, 3/4, 10^6, 007."
    ).encode(),
    "whitespace": "a  b   c\t\td    e\n\n\n   f \u00a0 g\u3000h\u2009i   \n\t \n  trailing   ".encode(),
    "crlf": b"first line\r\nsecond line\r\n\r\n  indented after blank\r\nlast\r\n",
    "emoji": ("Launch \U0001F680 then \U0001F44D\U0001F3FD and \U0001F468\u200D\U0001F469\u200D\U0001F467 "
              "family; flags \U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5, check \u2714\ufe0f, "
              "\U0001F600\U0001F600\U0001F600!").encode(),
    "cjk": ("\u4eca\u5929\u7684\u5929\u6c14\u5f88\u597d\uff0c\u6211\u4eec\u53bb\u516c\u56ed\u6563\u6b65\u5427\u3002"
            "\u6771\u4eac\u306f\u96e8\u3067\u3059\u304c\u3001\u660e\u65e5\u306f\u6674\u308c\u308b\u3067\u3057\u3087\u3046\u3002"
            "\ud55c\uad6d\uc5b4\ub3c4 \uc798 \ub429\ub2c8\ub2e4. \u30ab\u30bf\u30ab\u30ca\u3068\uff21\uff22\uff23\uff11\uff12\uff13").encode(),
    "cyrillic": ("\u041c\u043e\u0440\u043e\u0437 \u0438 \u0441\u043e\u043b\u043d\u0446\u0435; \u0434\u0435\u043d\u044c "
                 "\u0447\u0443\u0434\u0435\u0441\u043d\u044b\u0439! \u0407\u0436\u0430\u043a \u0456 "
                 "\u0491\u0430\u043d\u043e\u043a, \u0404\u0432\u0440\u043e\u043f\u0430. \u0421\u0420\u0411\u0418\u0408\u0410 "
                 "\u0459\u0443\u0431\u0430\u0432.").encode(),
    "combining": ("e\u0301 vs \u00e9, n\u0303o, A\u030a vs \u00c5, q\u0307\u0323, "
                  "o\u0308\u0304, \u1100\u1161\u11a8 (jamo), \u212b angstrom, \ufb01 ligature, "
                  "\u0627\u064e\u0644\u0652 arabic marks").encode(),
    "invalid_utf8": (b"valid start \xff\xfe then \xc3( and \xe2\x82 cut, \xf0\x9f\x98 x, "
                     b"\xed\xa0\x80 surrogate, \xc0\xaf overlong, \x80\x80 lone, end \xe4\xb8"),
    "special_tokens": (b"<s>Hello</s> and <unk> x<|endoftext|>y <|im_start|>user\nhi<|im_end|>"
                       b" <|begin_of_text|>text<|end_of_text|> <|eot_id|><s>"),
    "contractions": b"I'll go; they're here, WE'VE won, it's DON'T You'D 's 'S  'll' rock'n'roll",
    "punctuation": (b"!!! ??? ... --- (a) [b] {c} <d> @user #tag $5 100% ~/.config/x.json "
                    b"\"quoted\" 'single' a->b a=>b a::b a||b /* c */ // d \\n \\t ==="),
    "scripts": ("\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03ba\u03b5\u03af\u03bc\u03b5\u03bd\u03bf; "
                "\u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920; "
                "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22; "
                "\u05e2\u05d1\u05e8\u05d9\u05ea; \u0627\u0644\u0639\u0631\u0628\u064a\u0629").encode(),
    "unicode_spaces": "x\u0085y\u2028z\u2029w\u180ev\u200bu\ufeffq\u000bp\u000co\u001cn".encode(),
    "long_runs": (b"a" * 300 + b" " + b"ab" * 120 + b" " + b"-" * 70 + b" " + b"1" * 40 + b" " + b"\n" * 12),
    "empty": b"",
    "one_space": b" ",
    "newline": b"\n",
}


def generated_text(seed, n_words):
    """A long pseudo-random mix of the words above: the 'generated' part of the text set."""
    rng = random.Random(seed)
    words = []
    for name in ("prose", "code", "numbers", "cjk", "cyrillic", "emoji", "combining", "scripts"):
        words += TEXTS[name].decode().split(" ")
    seps = [" ", " ", " ", "  ", "\n", "\n\n", "\t", ", ", ". "]
    return "".join(rng.choice(words) + rng.choice(seps) for _ in range(n_words)).encode()


TEXTS["generated"] = generated_text(20261121, 1000)


def as_text(raw):
    return raw.decode("utf-8", errors="replace")


def fnv1a64_ids(ids):
    h = 0xcbf29ce484222325
    for b in b"".join(int(i).to_bytes(4, "little") for i in ids):
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench-only", action="store_true")
    args = ap.parse_args()
    wiki = open(WIKI, "rb").read().decode("utf-8")
    groups = {}
    for d in DIRS:
        digest = hashlib.sha256(open(os.path.join(SHARED, d, "tokenizer.json"), "rb").read()).hexdigest()
        groups.setdefault(digest, []).append(d)

    if not args.bench_only:
        os.makedirs(os.path.join(OUT, "texts"), exist_ok=True)
        for name, raw in TEXTS.items():
            with open(os.path.join(OUT, "texts", name + ".txt"), "wb") as f:
                f.write(raw)
        for paths in groups.values():
            tok = Tokenizer.from_file(os.path.join(SHARED, paths[0], "tokenizer.json"))
            added = [t.content for t in tok.get_added_tokens_decoder().values()]
            auto = transformers.AutoTokenizer.from_pretrained(os.path.join(SHARED, paths[0]))
            texts, plain = {}, {}
            for name, raw in TEXTS.items():
                enc = tok.encode(as_text(raw))
                texts[name] = {"ids": enc.ids, "decoded": tok.decode(enc.ids)}
                if not any(a in as_text(raw) for a in added):
                    plain[name] = tok.encode(as_text(raw), add_special_tokens=False).ids
            wiki_ids = tok.encode(wiki).ids
            golden = {
                "paths": paths,
                "tokenizers_version": tokenizers.__version__,
                "transformers_version": transformers.__version__,
                "texts": texts,
                "plain_ids": plain,
                "transformers_ids": auto(as_text(TEXTS["prose"])).input_ids,
                "wiki": {"file": "data/wikitext-2-raw/wiki.test.raw", "count": len(wiki_ids),
                         "fnv1a64": fnv1a64_ids(wiki_ids)},
            }
            name = os.path.basename(paths[0])
            with open(os.path.join(OUT, name + ".json"), "w") as f:
                json.dump(golden, f, ensure_ascii=False, separators=(",", ":"))
                f.write("\n")
            print(f"{name}: {len(wiki_ids)} wiki ids, paths {paths}")

    bench = {"tokenizers_version": tokenizers.__version__, "threads": 1, "file": WIKI,
             "bytes": len(wiki.encode()), "results": {}}
    for d in ("tokenizers/llama3", "tokenizers/qwen3", "models/llama-19m"):
        tok = Tokenizer.from_file(os.path.join(SHARED, d, "tokenizer.json"))
        best = None
        for _ in range(3):
            tok = Tokenizer.from_file(os.path.join(SHARED, d, "tokenizer.json"))  # cold cache
            t0 = time.perf_counter()
            tok.encode(wiki)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        bench["results"][os.path.basename(d)] = {"seconds": best, "mb_per_s": len(wiki.encode()) / best / 1e6}
        print(f"HF tokenizers {d}: {len(wiki.encode()) / best / 1e6:.2f} MB/s (1 thread)")
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", "bench-hf-tokenizers.json"), "w") as f:
        json.dump(bench, f, indent=1)


if __name__ == "__main__":
    main()
