"""Writing a golden file, or checking it against what is committed (the tools' --check).

write_or_check(path, data, check): with check, compares data (bytes) with the file and
prints "same" or "DIFFERENT"; otherwise writes it under a temporary name renamed into
place. Returns True when the file is (now) the same.
dumps_record(record): the JSON text of a golden record, one tensor per line.
tensor_records(export_dir, with_value): per tensor of the directory's safetensors files its
dtype, shape and SHA-256, and its value where with_value(dtype, shape) says so.
in_export_dir(keep, subdir, prefix, export, describe): describe(dir) of a directory
export(dir) filled, dir being keep/subdir (emptied first) when keep is given, else temporary.
wildcard_versions(config): a config with its version fields and producer name as "*".
"""
import copy
import hashlib
import json
import os
import struct
import tempfile


def write_or_check(path, data, check):
    if check:
        same = os.path.exists(path) and open(path, "rb").read() == data
        print(("same     " if same else "DIFFERENT"), path)
        return same
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    print(f"wrote {path} ({len(data)} bytes)")
    return True


def dumps_record(record):
    """Sorted keys; each tensor on its own line, everything else compact."""
    lines = ["{"]
    keys = sorted(record)
    for i, key in enumerate(keys):
        comma = "," if i + 1 < len(keys) else ""
        value = record[key]
        if key == "tensors":
            lines.append('  "tensors": {')
            names = sorted(value)
            for j, name in enumerate(names):
                tail = "," if j + 1 < len(names) else ""
                lines.append(f"    {json.dumps(name)}: {json.dumps(value[name], sort_keys=True)}{tail}")
            lines.append("  }" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def tensor_records(export_dir, with_value):
    """{name: {dtype, shape, sha256[, value]}} of every *.safetensors file in export_dir;
    value (F32 or BF16 of one element) where with_value(dtype, shape) is true."""
    out = {}
    for name in sorted(os.listdir(export_dir)):
        if not name.endswith(".safetensors"):
            continue
        with open(os.path.join(export_dir, name), "rb") as f:
            data = f.read()
        n = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + n])
        header.pop("__metadata__", None)
        for key, info in header.items():
            begin, end = info["data_offsets"]
            raw = data[8 + n + begin:8 + n + end]
            record = {"dtype": info["dtype"], "shape": info["shape"], "sha256": hashlib.sha256(raw).hexdigest()}
            if with_value(info["dtype"], info["shape"]):
                record["value"] = struct.unpack("<f", raw if info["dtype"] == "F32" else b"\0\0" + raw)[0]
            out[key] = record
    return out


def in_export_dir(keep, subdir, prefix, export, describe):
    """describe(dir) after export(dir): dir is keep/subdir, emptied first and left there, or a
    temporary directory removed afterwards."""
    if keep:
        export_dir = os.path.join(keep, subdir)
        os.makedirs(export_dir, exist_ok=True)
        for name in os.listdir(export_dir):
            os.remove(os.path.join(export_dir, name))
        export(export_dir)
        return describe(export_dir)
    with tempfile.TemporaryDirectory(prefix=prefix) as export_dir:
        export(export_dir)
        return describe(export_dir)


def wildcard_versions(config):
    """Replaces the version fields that change with every release, and the producer's
    name (strata writes its own; loaders key on quant_method and quant_algo), by "*"."""
    config = copy.deepcopy(config)
    if isinstance(config, dict):
        if isinstance(config.get("producer"), dict):
            for key in ("name", "version"):
                if key in config["producer"]:
                    config["producer"][key] = "*"
        if "transformers_version" in config:
            config["transformers_version"] = "*"
    return config
