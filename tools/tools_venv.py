"""The virtual environments the tools/ scripts run in (build/tools-venv, created on first use).

Reference libraries are installed there, never globally; CI never needs them. llm-compressor
pins older torch, transformers and compressed-tensors than the golden scripts record, so
the benchmark that runs it (bench_peers.py) gives it a venv of its own
(build/llmcompressor-venv) instead of moving the golden scripts' versions.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "build", "tools-venv")


def venv_python(packages, venv=VENV):
    """The venv's python, the venv created and the packages installed first."""
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", venv])
    subprocess.check_call([python, "-m", "pip", "install", "-q", *packages])
    return python


def ensure_venv(packages):
    """Re-executes the calling script inside build/tools-venv with the packages installed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    python = venv_python(packages)
    os.execv(python, [python, *sys.argv])
