"""The virtual environment the tools/ scripts run in (build/tools-venv, created on first use).

Reference libraries are installed there, never globally; CI never needs them.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, "build", "tools-venv")


def ensure_venv(packages):
    """Re-executes the calling script inside the venv with the packages installed."""
    python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.check_call([sys.executable, "-m", "venv", VENV])
    subprocess.check_call([python, "-m", "pip", "install", "-q", *packages])
    os.execv(python, [python, *sys.argv])
