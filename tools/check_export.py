#!/usr/bin/env python3
"""Checks a quantized checkpoint directory against a golden ModelOpt export structure.

    python3 tools/check_export.py OUT_DIR --golden tests/golden/export/<case>.json [--load]
                                  [--reference ../shared/models/llama-19m]

With --golden (files written by tools/gen_golden_export.py from NVIDIA ModelOpt's own
export_hf_checkpoint), compares and prints every difference:
  - tensors: the names, safetensors dtypes and shapes of the model weights, read from the
    safetensors headers (model.safetensors, or the shards listed in
    model.safetensors.index.json, whose weight_map must agree with the shards), and the
    header's __metadata__ "format" ("pt", which transformers' loader insists on);
  - hf_quant_config.json: the whole "quantization" section (quant_algo, kv_cache_quant_algo,
    group_size, has_zero_point, pre_quant_scale, ... ; exclude_modules compared as a set)
    and producer (a "*" in the golden matches any value);
  - config.json "quantization_config": every field, "*" matching any value, lists of module
    names ("ignore", "targets") compared as sets.
The list of files is compared too, but a difference there is only a note (ModelOpt's exporter
writes no tokenizer files, strata does; generation_config.json is transformers'). Other
*.safetensors files (fakequant's quant_scales.safetensors) are not model weights and are
only listed. Exit status 1 on any difference. This part needs nothing but python3.

--load (runs in build/tools-venv, torch + transformers + nvidia-modelopt, CPU only) loads
OUT_DIR and runs a short forward (2 x 32 fixed random tokens), failing on non-finite logits:
  - plain bf16/fp32 checkpoint (no "*.weight_scale" tensors: strata's fakequant output):
    AutoModelForCausalLM.from_pretrained, failing on missing or mismatched weights.
  - ModelOpt-format checkpoint (quant_method "modelopt"): transformers has no "modelopt"
    quantizer; it warns "Unknown quantization type", skips quantization and silently loads
    the raw FP8/packed codes as bf16 (unscaled), so it cannot be used. Instead this script
    dequantizes every quantized linear itself, with ModelOpt's layouts as the golden files
    record them (FP8 per-tensor/per-channel: code * weight_scale; FP8 block (fp8_pb_wo):
    code * weight_scale (N/128, 1, K/128, 1) per 128x128 tile; NVFP4/W4A16_NVFP4: uint8
    [out, in/2], low nibble = even column, E2M1 * E4M3 weight_scale [out, in/16] *
    weight_scale_2; MXFP4 (quant_algo "mxfp4"): uint8 [out, in/2] as NVFP4, uint8 E8M0
    weight_scale [out, in/32] = 2^(e - 127); INT8 W8A16: int8 * weight_scale[out]; INT4 W4A16_AWQ: uint8 [out/2, in],
    low nibble = even row, two's complement, * weight_scale [out, in/128], times
    pre_quant_scale [in] when present), builds the model from config.json with
    AutoModelForCausalLM.from_config and loads the result strictly. input_scale, k_scale,
    v_scale and weight_scale_2 must be finite and positive; activations and the KV cache are
    not quantized in this forward. Tensors nothing consumes are errors.
  - ModelOpt's own loader: ModelOpt restores only its fake-quant state
    (mto.enable_huggingface_checkpointing() + from_pretrained, reading modelopt_state.pth);
    it has no loader for its unified real-quantized HF checkpoints (those are deployed with
    TensorRT-LLM, vLLM or SGLang on GPU). When OUT_DIR holds modelopt_state.pth that path is
    run as well; otherwise the script says it is skipped.
  - compressed-tensors checkpoint (quant_method "compressed-tensors": strata's
    --format compressed-tensors, or llm-compressor's): loaded by transformers' own
    compressed-tensors integration (CompressedTensorsConfig(run_compressed=False): the
    library's decompressor turns every packed linear back into a dense weight), so a
    missing, extra or misshapen tensor or an unknown format fails the load. With
    --fakequant FQ_DIR (strata quantize --format fakequant --convention compressed-tensors
    of the same run), every decompressed weight must equal FQ_DIR's bf16 weight exactly.
With --reference MODEL_DIR the logits are compared with the unquantized model's (relative
error, top-1 agreement), and --min-top1 makes a low agreement an error.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ["torch", "transformers", "nvidia-modelopt", "compressed-tensors", "safetensors"]
SET_KEYS = {"exclude_modules", "ignore", "targets"}
LOAD_BATCH, LOAD_LEN, LOAD_SEED = 2, 32, 0


# ----------------------------------------------------------------------------- structure

def read_header(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))


def model_shards(out_dir, problems):
    """The model weight files: from the index when there is one, else model.safetensors."""
    index_path = os.path.join(out_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f).get("weight_map", {})
        return sorted(set(weight_map.values())), weight_map
    if os.path.exists(os.path.join(out_dir, "model.safetensors")):
        return ["model.safetensors"], None
    problems.append("no model.safetensors and no model.safetensors.index.json")
    return [], None


def read_tensors(out_dir, problems):
    """{name: {"dtype", "shape"}} over the model shards, and the first shard's __metadata__."""
    shards, weight_map = model_shards(out_dir, problems)
    tensors, metadata = {}, None
    for shard in shards:
        path = os.path.join(out_dir, shard)
        if not os.path.exists(path):
            problems.append(f"index names shard {shard}, which is missing")
            continue
        header = read_header(path)
        meta = header.pop("__metadata__", None)
        if metadata is None:
            metadata = meta or {}
        for name, info in header.items():
            if name in tensors:
                problems.append(f"tensor {name} appears in more than one shard")
            tensors[name] = {"dtype": info["dtype"], "shape": info["shape"], "shard": shard}
            if weight_map is not None and weight_map.get(name) != shard:
                problems.append(f"index maps {name} to {weight_map.get(name)}, but it is in {shard}")
    if weight_map is not None:
        for name in sorted(set(weight_map) - set(tensors)):
            problems.append(f"index lists {name}, which no shard holds")
    return tensors, metadata or {}


def same(golden, actual):
    """Deep equality where a golden "*" matches anything and module-name lists are sets."""
    if golden == "*":
        return True
    if isinstance(golden, dict) and isinstance(actual, dict):
        return golden.keys() == actual.keys() and all(same(golden[k], actual[k]) for k in golden)
    if isinstance(golden, list) and isinstance(actual, list):
        return len(golden) == len(actual) and all(same(g, a) for g, a in zip(golden, actual))
    return golden == actual and type(golden) is type(actual)


def compare_dict(label, golden, actual, problems):
    """Reports every differing key of two dicts, recursing, lists in SET_KEYS as sets."""
    if not isinstance(golden, dict) or not isinstance(actual, dict):
        if not same(golden, actual):
            problems.append(f"{label}: expected {json.dumps(golden)}, got {json.dumps(actual)}")
        return
    for key in sorted(set(golden) | set(actual)):
        where = f"{label}.{key}"
        if key not in actual:
            problems.append(f"{where}: missing (expected {json.dumps(golden[key])})")
        elif key not in golden:
            problems.append(f"{where}: unexpected (= {json.dumps(actual[key])})")
        elif key in SET_KEYS and isinstance(golden[key], list) and isinstance(actual[key], list):
            g, a = set(golden[key]), set(actual[key])
            for name in sorted(g - a):
                problems.append(f"{where}: lacks {name!r}")
            for name in sorted(a - g):
                problems.append(f"{where}: has extra {name!r}")
            if len(actual[key]) != len(a):
                problems.append(f"{where}: has duplicates")
        elif isinstance(golden[key], dict):
            compare_dict(where, golden[key], actual[key], problems)
        elif not same(golden[key], actual[key]):
            problems.append(f"{where}: expected {json.dumps(golden[key])}, got {json.dumps(actual[key])}")


def check_structure(out_dir, golden, problems, notes):
    if "export_error" in golden:
        problems.append(f"the golden file records that ModelOpt refuses this case: {golden['export_error']}")
        return
    tensors, metadata = read_tensors(out_dir, problems)
    expected = golden["tensors"]
    for name in sorted(set(expected) - set(tensors)):
        problems.append(f"tensor {name}: missing (expected {expected[name]['dtype']} {expected[name]['shape']})")
    for name in sorted(set(tensors) - set(expected)):
        problems.append(f"tensor {name}: unexpected ({tensors[name]['dtype']} {tensors[name]['shape']})")
    for name in sorted(set(tensors) & set(expected)):
        g, a = expected[name], tensors[name]
        if g["dtype"] != a["dtype"]:
            problems.append(f"tensor {name}: dtype {a['dtype']}, expected {g['dtype']}")
        if g["shape"] != a["shape"]:
            problems.append(f"tensor {name}: shape {a['shape']}, expected {g['shape']}")
    want_format = (golden.get("safetensors_metadata") or {}).get("format")
    if want_format is not None and metadata.get("format") != want_format:
        problems.append(f"safetensors __metadata__.format: {metadata.get('format')!r}, expected {want_format!r}")

    path = os.path.join(out_dir, "hf_quant_config.json")
    if golden.get("hf_quant_config") is not None:
        if not os.path.exists(path):
            problems.append("hf_quant_config.json: missing")
        else:
            with open(path) as f:
                actual = json.load(f)
            compare_dict("hf_quant_config", golden["hf_quant_config"], actual, problems)
    elif os.path.exists(path):
        problems.append("hf_quant_config.json: present, the golden export has none")

    with open(os.path.join(out_dir, "config.json")) as f:
        config = json.load(f)
    compare_dict("config.json quantization_config", golden.get("quantization_config"),
                 config.get("quantization_config"), problems)

    files = sorted(os.listdir(out_dir))
    shards = {t["shard"] for t in tensors.values()}
    for name in files:
        if name.endswith(".safetensors") and name not in shards:
            notes.append(f"{name}: not a model weight file (not compared)")
    golden_files = set(golden.get("files", []))
    golden_files.discard("model.safetensors")  # sharding may differ; the tensors are compared
    for name in sorted(golden_files - set(files)):
        notes.append(f"file {name}: ModelOpt's export has it, OUT_DIR does not")
    for name in sorted(set(files) - golden_files):
        if not name.endswith(".safetensors") and name != "model.safetensors.index.json":
            notes.append(f"file {name}: in OUT_DIR, not in ModelOpt's export")


# ----------------------------------------------------------------------------- --load

def fused_experts(name, param, expected):
    """transformers v5 holds a layer's routed experts as one parameter (experts.gate_up_proj
    (E, 2I, H), gate first; experts.down_proj (E, H, I)): the same from per-expert weights."""
    import torch
    if name.endswith(".experts.gate_up_proj"):
        prefix, parts = name[:-len("gate_up_proj")], ("gate_proj", "up_proj")
    elif name.endswith(".experts.down_proj"):
        prefix, parts = name[:-len("down_proj")], ("down_proj",)
    else:
        return None
    experts = []
    for e in range(param.shape[0]):
        pieces = [expected.get(f"{prefix}{e}.{p}.weight") for p in parts]
        if any(p is None for p in pieces):
            return None
        experts.append(torch.cat(pieces, 0))
    return torch.stack(experts)


def load_compressed_tensors(out_dir, fakequant, problems):
    """transformers' compressed-tensors integration, decompressing; compared with a fakequant output."""
    import torch
    import transformers
    from transformers.utils.quantization_config import CompressedTensorsConfig
    model, info = transformers.AutoModelForCausalLM.from_pretrained(
        out_dir, dtype=torch.bfloat16, output_loading_info=True,
        quantization_config=CompressedTensorsConfig(run_compressed=False))
    # Decompressed, the model has no activation quantizers: transformers reports the input
    # and KV-cache scales as unused, for llm-compressor's own checkpoints alike.
    activation_scales = (".input_scale", ".input_global_scale", ".k_scale", ".v_scale")
    unused = [k for k in info.get("unexpected_keys") or [] if k.endswith(activation_scales)]
    if unused:
        print(f"transformers load (compressed-tensors): {len(unused)} activation scales unused when decompressed")
    for key in ("missing_keys", "mismatched_keys", "unexpected_keys", "error_msgs"):
        for item in info.get(key) or []:
            if item not in unused:
                problems.append(f"transformers load (compressed-tensors): {key[:-1].replace('_', ' ')} {item}")
    if fakequant:
        from safetensors import safe_open
        expected = {}
        for name in sorted(os.listdir(fakequant)):
            if name.endswith(".safetensors") and name != "quant_scales.safetensors":
                with safe_open(os.path.join(fakequant, name), "pt") as f:
                    for key in f.keys():
                        expected[key] = f.get_tensor(key)
        compared = differing = 0
        for name, param in model.state_dict().items():
            want = fused_experts(name, param, expected) if name not in expected else expected[name]
            if want is None:
                continue
            got, want = param.to(torch.bfloat16), want.to(torch.bfloat16)
            compared += 1
            if got.shape != want.shape or not torch.equal(got, want):
                differing += 1
                bad = (got != want).sum().item() if got.shape == want.shape else "shape"
                problems.append(f"{name}: decompressed weight differs from {fakequant}'s ({bad} elements)")
        print(f"decompressed by compressed-tensors: {compared} weights compared with {fakequant}, "
              f"{compared - differing} identical")
    return model.float()


def load_and_run(out_dir, reference, min_top1, problems, notes, fakequant=None):
    import torch
    import transformers

    torch.manual_seed(LOAD_SEED)
    with open(os.path.join(out_dir, "config.json")) as f:
        config_dict = json.load(f)
    vocab = config_dict["vocab_size"]
    g = torch.Generator().manual_seed(LOAD_SEED)
    ids = torch.randint(0, vocab, (LOAD_BATCH, LOAD_LEN), generator=g)

    tensors, _ = read_tensors(out_dir, [])
    quantized = any(n.endswith(".weight_scale") for n in tensors)
    method = (config_dict.get("quantization_config") or {}).get("quant_method")
    if method == "compressed-tensors":
        model = load_compressed_tensors(out_dir, fakequant, problems)
        how = "transformers + compressed-tensors, decompressed"
    elif quantized:
        model = load_dequantized(out_dir, tensors, problems)
        how = "dequantized by this script (transformers cannot load quant_method modelopt)"
    else:
        model, info = transformers.AutoModelForCausalLM.from_pretrained(
            out_dir, dtype=torch.float32, output_loading_info=True)
        for key in ("missing_keys", "mismatched_keys", "error_msgs"):
            for item in info.get(key) or []:
                problems.append(f"transformers load: {key[:-1].replace('_', ' ')} {item}")
        unexpected = sorted(info.get("unexpected_keys") or [])
        if unexpected:
            notes.append(f"transformers load: {len(unexpected)} unexpected key(s) ignored, e.g. "
                         + ", ".join(unexpected[:3]))
        how = "AutoModelForCausalLM.from_pretrained"
    if model is None:
        return
    logits = forward(model, ids, f"load ({how})", problems)

    if method == "compressed-tensors":
        pass
    elif os.path.exists(os.path.join(out_dir, "modelopt_state.pth")):
        import modelopt.torch.opt as mto
        mto.enable_huggingface_checkpointing()
        restored = transformers.AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32)
        forward(restored, ids, "ModelOpt restore (modelopt_state.pth)", problems)
    else:
        notes.append("ModelOpt loader: skipped; ModelOpt has no CPU loader for unified HF checkpoints "
                     "(it restores only fake-quant modelopt_state.pth, absent here)")

    if reference and logits is not None:
        ref = transformers.AutoModelForCausalLM.from_pretrained(reference, dtype=torch.float32)
        ref_logits = forward(ref, ids, "reference", problems)
        if ref_logits is not None:
            rel = ((logits - ref_logits).norm() / ref_logits.norm()).item()
            top1 = (logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
            print(f"vs reference {reference}: logits relative error {rel:.4f}, top-1 agreement {top1:.3f}")
            if min_top1 is not None and top1 < min_top1:
                problems.append(f"top-1 agreement {top1:.3f} with the reference is below {min_top1}")


def forward(model, ids, label, problems):
    import torch
    model.eval()
    with torch.no_grad():
        logits = model(ids).logits.float()
    if not torch.isfinite(logits).all():
        problems.append(f"{label}: non-finite logits")
        return None
    print(f"{label}: forward OK, logits {list(logits.shape)}, mean |logit| {logits.abs().mean().item():.4f}")
    return logits


E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def fp4_packed(w, s, out_f, in_f):
    """E2M1 codes two per byte, (out_f, padded / 2): rows padded with zeros to whole scale
    blocks (16 for NVFP4, 32 for MXFP4) when in_f is not a multiple, as ModelOpt pads."""
    if w.dim() != 2 or s.dim() != 2 or w.shape[0] != out_f or s.shape[0] != out_f:
        return False
    padded = 2 * w.shape[1]
    return padded % s.shape[1] == 0 and padded >= in_f and padded - in_f < padded // s.shape[1]


def dequantize_fp4(w, s, in_f):
    import torch
    lut = torch.tensor(E2M1)
    codes = torch.stack([w & 0xF, w >> 4], -1).reshape(w.shape[0], 2 * w.shape[1]).long()
    block = 2 * w.shape[1] // s.shape[1]
    return (lut[codes] * s.repeat_interleave(block, 1))[:, :in_f]


def dequantize(prefix, shape, get, consumed, problems):
    """The fp32 weight of the quantized linear `prefix` (logical shape `shape`), or None."""
    import torch
    out_f, in_f = shape
    w = get(prefix + "weight")
    s_raw = get(prefix + "weight_scale")
    s = s_raw.float()
    consumed.update({prefix + "weight", prefix + "weight_scale"})
    if s_raw.dtype == torch.uint8:  # MXFP4: E8M0 exponents, 2^(e - 127); 255 is NaN
        if (s_raw == 255).any():
            problems.append(f"{prefix}weight_scale: E8M0 NaN (255)")
        s = torch.exp2(s - 127.0)
    if not torch.isfinite(s).all() or (s < 0).any():
        problems.append(f"{prefix}weight_scale: non-finite or negative values")
    if w.dtype == torch.float8_e4m3fn:
        if s.dim() == 0 or s.numel() == 1:
            result = w.float() * s.reshape(())
        elif s.dim() == 1 and s.shape[0] == out_f:
            result = w.float() * s[:, None]
        elif s.dim() in (2, 4):  # block scales; fp8_pb_wo stores (N/128, 1, K/128, 1)
            if s.dim() == 4:
                s = s[:, 0, :, 0]
            bo, bi = -(-out_f // s.shape[0]), -(-in_f // s.shape[1])
            full = s.repeat_interleave(bo, 0)[:out_f].repeat_interleave(bi, 1)[:, :in_f]
            result = w.float() * full
        else:
            problems.append(f"{prefix}weight_scale: shape {list(s.shape)} fits no FP8 layout")
            return None
    elif w.dtype == torch.int8:
        if list(s.shape) != [out_f]:
            problems.append(f"{prefix}weight_scale: shape {list(s.shape)}, INT8 wants [{out_f}]")
            return None
        result = w.float() * s[:, None]
    elif w.dtype == torch.uint8 and fp4_packed(w, s, out_f, in_f) and prefix + "weight_scale_2" in get.names:
        s2 = get(prefix + "weight_scale_2").float()
        consumed.add(prefix + "weight_scale_2")
        if s2.numel() != 1 or not (s2 > 0).all():
            problems.append(f"{prefix}weight_scale_2: {list(s2.shape)} must be one positive value")
        result = dequantize_fp4(w, s, in_f) * s2.reshape(())
    elif w.dtype == torch.uint8 and fp4_packed(w, s, out_f, in_f) and s_raw.dtype == torch.uint8:
        result = dequantize_fp4(w, s, in_f)
    elif w.dtype == torch.uint8 and list(w.shape) == [out_f // 2, in_f]:
        lo, hi = (w & 0xF).to(torch.int16), (w >> 4).to(torch.int16)
        q = torch.empty(out_f, in_f)
        q[0::2] = torch.where(lo > 7, lo - 16, lo).float()
        q[1::2] = torch.where(hi > 7, hi - 16, hi).float()
        block = in_f // s.shape[1]
        result = q * s.repeat_interleave(block, 1)
    else:
        problems.append(f"{prefix}weight: {w.dtype} {list(w.shape)} fits no ModelOpt layout for {shape}")
        return None
    if prefix + "pre_quant_scale" in get.names:
        pqs = get(prefix + "pre_quant_scale").float()
        consumed.add(prefix + "pre_quant_scale")
        result = result * pqs[None, :]
    return result


# Per-expert projection names in hub checkpoints: (gate, up, down).
EXPERT_NAMES = (("gate_proj", "up_proj", "down_proj"), ("w1", "w3", "w2"))


def stack_experts(name, shape, weight):
    """transformers v5 keeps experts stacked in memory, (E, 2 * width, hidden) gate_up_proj and
    (E, hidden, width) down_proj; checkpoints (strata's and ModelOpt's) store them per expert."""
    import torch
    base = name.rsplit(".", 1)[0]  # ...experts
    n_experts, rows, cols = shape
    for gate, up, down in EXPERT_NAMES:
        if name.endswith("gate_up_proj"):
            half = (rows // 2, cols)
            parts = [(weight(f"{base}.{e}.{gate}.weight", half), weight(f"{base}.{e}.{up}.weight", half))
                     for e in range(n_experts)]
            if all(g is not None and u is not None for g, u in parts):
                return torch.stack([torch.cat([g, u], 0) for g, u in parts])
        else:
            parts = [weight(f"{base}.{e}.{down}.weight", (rows, cols)) for e in range(n_experts)]
            if all(d is not None for d in parts):
                return torch.stack(parts)
    return None


def load_dequantized(out_dir, tensors, problems):
    import torch
    import transformers
    from safetensors import safe_open

    handles = {}

    def get(name):
        shard = tensors[name]["shard"]
        if shard not in handles:
            handles[shard] = safe_open(os.path.join(out_dir, shard), "pt")
        return handles[shard].get_tensor(name)
    get.names = set(tensors)

    config = transformers.AutoConfig.from_pretrained(out_dir)
    if getattr(config, "quantization_config", None) is not None:
        del config.quantization_config
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    wanted = model.state_dict()
    state, consumed = {}, set()

    def weight(name, shape):
        """A 2-D weight, dequantized when it has scales; None when absent. Mixtral's hub
        checkpoints name the MoE block block_sparse_moe, transformers v5 calls it mlp."""
        for candidate in (name, name.replace(".mlp.", ".block_sparse_moe.")):
            prefix = candidate[: -len("weight")] if candidate.endswith("weight") else None
            if prefix and prefix + "weight_scale" in tensors:
                return dequantize(prefix, shape, get, consumed, problems)
            if candidate in tensors:
                consumed.add(candidate)
                return get(candidate).float()
        return None

    for name, param in wanted.items():
        if name.endswith((".experts.gate_up_proj", ".experts.down_proj")) and param.dim() == 3:
            w = stack_experts(name, tuple(param.shape), weight)
        else:
            w = weight(name, tuple(param.shape))
        if w is None:
            continue  # reported by load_state_dict below
        if tuple(w.shape) != tuple(param.shape):
            problems.append(f"{name}: loads as {list(w.shape)}, the model wants {list(param.shape)}")
            continue
        state[name] = w
    for name in sorted(tensors):
        if name in consumed:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("input_scale", "k_scale", "v_scale"):
            v = get(name).float()
            if v.numel() != 1 or not torch.isfinite(v).all() or not (v > 0).all():
                problems.append(f"{name}: {list(v.shape)} must be one finite positive value")
        else:
            problems.append(f"{name}: consumed by nothing (not a weight of {type(model).__name__})")
    result = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or []) if config.tie_word_embeddings else set()
    for key in result.missing_keys:
        if key not in tied:
            problems.append(f"dequantized load: missing {key}")
    if config.tie_word_embeddings:
        model.tie_weights()
    return model


# ----------------------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="the checkpoint directory to check")
    parser.add_argument("--golden", help="tests/golden/export/<case>.json")
    parser.add_argument("--load", action="store_true", help="load OUT_DIR and run a short forward (see above)")
    parser.add_argument("--reference", metavar="MODEL_DIR", help="with --load: compare logits with this model's")
    parser.add_argument("--min-top1", type=float, help="with --reference: fail below this top-1 agreement")
    parser.add_argument("--fakequant", metavar="FQ_DIR",
                        help="with --load of a compressed-tensors checkpoint: the decompressed weights must equal "
                             "FQ_DIR's (strata quantize --format fakequant --convention compressed-tensors)")
    args = parser.parse_args()
    if not args.golden and not args.load:
        parser.error("give --golden, --load or both")
    if args.load:
        from tools_venv import ensure_venv
        ensure_venv(PACKAGES)  # re-executes this script in build/tools-venv unless already there
    problems, notes = [], []
    if args.golden:
        with open(args.golden) as f:
            golden = json.load(f)
        check_structure(args.out_dir, golden, problems, notes)
    if args.load:
        load_and_run(args.out_dir, args.reference, args.min_top1, problems, notes, args.fakequant)
    for line in notes:
        print("note:", line)
    for line in problems:
        print("DIFF:", line)
    if problems:
        print(f"{len(problems)} difference(s) in {args.out_dir}")
        return 1
    print(f"OK {args.out_dir}" + (f" matches {args.golden}" if args.golden else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
