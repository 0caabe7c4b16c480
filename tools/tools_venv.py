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


TRANSFORMERS4_VENV = os.path.join(ROOT, "build", "modelopt-tf4-venv")
TRANSFORMERS4 = "transformers==4.57.6"


def ensure_transformers4_venv(packages):
    """Re-executes the calling script inside build/modelopt-tf4-venv: transformers 4.57 of its
    own, and torch and ModelOpt from build/tools-venv (a .pth file), so that ModelOpt meets the
    per-expert nn.Linear MoE blocks transformers 4 builds (transformers 5 fuses the experts,
    which ModelOpt 0.47 cannot export with AWQ)."""
    if os.path.realpath(sys.prefix) == os.path.realpath(TRANSFORMERS4_VENV):
        return
    tools_python = venv_python(packages)
    site = subprocess.check_output([tools_python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   text=True).strip()
    python = os.path.join(TRANSFORMERS4_VENV, "bin", "python")
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", TRANSFORMERS4_VENV])
    own_site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                       text=True).strip()
    with open(os.path.join(own_site, "tools-venv.pth"), "w") as f:
        f.write(site + "\n")
    subprocess.check_call([python, "-m", "pip", "install", "-q", TRANSFORMERS4])
    os.execv(python, [python, *sys.argv])
