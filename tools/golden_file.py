"""Writing a golden file, or checking it against what is committed (the tools' --check).

write_or_check(path, data, check): with check, compares data (bytes) with the file and
prints "same" or "DIFFERENT"; otherwise writes it under a temporary name renamed into
place. Returns True when the file is (now) the same.
"""
import os


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
