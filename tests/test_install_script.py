"""``scripts/install.sh`` writes nothing on stdout (``make train`` keeps it for the run's result
line): its own lines, pip's and Python's all go to stderr, whether it installs or finds the
environment up to date. The script runs for real against a stand-in venv whose ``python``
logs what it is asked and prints on stdout as pip and Python would, so nothing is installed
and the project's own ``.venv`` is not touched."""
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "install.sh"

#: the venv's python: pip prints what pip prints (``pip check``'s line included), the wheel
#: cache key script prints a key, ``-c`` code prints a version line; every call is logged
FAKE_PYTHON = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
  -m)
    [[ "$2" == pip ]] || exit 1
    if [[ " $* " == *" check "* ]]; then
      if [[ -n "${FAKE_BROKEN:-}" ]]; then echo "torch-cluster 1.6.3 requires scipy"; exit 1; fi
      echo "No broken requirements found."
    else
      echo "Successfully installed ${*:3}"
    fi ;;
  -) cat > /dev/null; echo "torch-fake-cp311-x86_64-cpu" ;;
  -c) echo "torch 2.11.0, torchaudio 2.11.0, torch_geometric 2.7.0, torch_scatter 2.1.2," \
        "torch_cluster 1.6.3, gnn_audio 0.1.0" ;;
esac
"""


@pytest.fixture
def venv(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    cache = tmp_path / "wheels" / "torch-fake-cp311-x86_64-cpu"
    cache.mkdir(parents=True)
    for wheel in ("torch_scatter-2.1.2-cp311-cp311-linux_x86_64.whl",
                  "torch_cluster-1.6.3-cp311-cp311-linux_x86_64.whl"):
        (cache / wheel).write_bytes(b"")
    return venv


def _install(venv, **env):
    log = venv.parent / "calls.log"
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GNN_AUDIO_VENV": str(venv),
                               "GNN_AUDIO_WHEEL_CACHE": str(venv.parent / "wheels"),
                               "FAKE_LOG": str(log), **env})
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return proc, calls


def test_install_writes_nothing_on_stdout(venv):
    proc, calls = _install(venv)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    # it did install (with the stand-in): the extensions from the cache, gnn_audio, the check
    assert any("--force-reinstall" in c and "torch_scatter-2.1.2" in c for c in calls)
    assert any(" -e " in f" {c} " and str(ROOT) in c for c in calls)
    assert "-m pip --disable-pip-version-check check" in calls
    # and said so on stderr, the check and the versions included
    err = proc.stderr
    assert "pip check: No broken requirements found." in err
    assert "torch 2.11.0, torchaudio 2.11.0" in err and "gnn_audio 0.1.0" in err
    assert (venv / ".gnn_audio_install_stamp").is_file()
    # a second run finds the environment up to date: still nothing on stdout
    proc, calls = _install(venv)
    assert proc.returncode == 0 and proc.stdout == ""
    assert "environment up to date" in proc.stderr
    assert not any(c.startswith("-m pip") for c in calls)


def test_a_failed_check_fails_the_install_on_stderr(venv):
    proc, _ = _install(venv, FAKE_BROKEN="1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "torch-cluster 1.6.3 requires scipy" in proc.stderr
    assert "pip check FAILED" in proc.stderr
    assert not (venv / ".gnn_audio_install_stamp").exists()
