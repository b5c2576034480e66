#!/usr/bin/env bash
# Install gnn_audio and its PyG stack into a virtual environment inside the checkout.
#
#   bash scripts/install.sh            # or: make install
#
# What it does, in order:
#   1. creates .venv (python3 -m venv) unless it exists;
#   2. installs torch==2.11.0 and torchaudio==2.11.0 (they must match);
#   3. provides torch-scatter 2.1.2 and torch-cluster 1.6.3, which the registry only has as
#      source: a wheel is taken from the wheel cache, else from PIP_FIND_LINKS / --find-links
#      (e.g. ../shared/wheels), else both are compiled at the same time with
#      --no-build-isolation against the installed torch (one build per core);
#      every wheel is import-checked against the installed torch before it is used;
#   4. installs gnn_audio itself (editable) with the extras in GNN_AUDIO_EXTRAS (default: test);
#   5. runs `pip check` and writes a stamp: a re-run with nothing changed is a no-op.
#
# Everything it prints, its own lines and pip's, goes to stderr: stdout stays free for the
# result line of what runs after it (`make train`, `make demo`).
#
# Environment knobs:
#   PYTHON                 interpreter used to create the venv (default python3)
#   GNN_AUDIO_VENV         venv folder (default <checkout>/.venv)
#   GNN_AUDIO_EXTRAS       extras to install (default test)
#   GNN_AUDIO_WHEEL_CACHE  root of the extension wheel cache
#                          (default ${XDG_CACHE_HOME:-~/.cache}/gnn_audio/wheels); wheels live in
#                          a sub-folder named after the torch version, Python tag, machine and
#                          CPU/CUDA flavour, so a wheel built against another torch is never used
#   PIP_FIND_LINKS         standard pip variable: folders with prebuilt wheels
#   FORCE_CUDA=1           build the extensions with CUDA kernels (needs nvcc)
set -euo pipefail
exec 1>&2  # all output on stderr (see above); pip, python and the build logs' tails included

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GNN_AUDIO_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${GNN_AUDIO_EXTRAS:-test}"
TORCH_PIN="torch==2.11.0"
TORCHAUDIO_PIN="torchaudio==2.11.0"
# name, version, import name, smoke test run against the installed torch
EXTENSIONS=(
  "torch-scatter 2.1.2 torch_scatter torch_scatter.scatter_max(torch.tensor([1.0,3.0,2.0]),torch.tensor([0,0,1]))"
  "torch-cluster 1.6.3 torch_cluster torch_cluster.knn_graph(torch.rand(16,3),k=4)"
)
STAMP="$VENV/.gnn_audio_install_stamp"
VPY="$VENV/bin/python"
cd "$ROOT"

log() { printf '[install %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
pip_() { "$VPY" -m pip --disable-pip-version-check "$@"; }

stamp_value() {
  cat "$ROOT/setup.cfg" "$ROOT/setup.py" "$ROOT/scripts/install.sh"
  echo "extras=$EXTRAS"
}
stamp_hash() { stamp_value | sha256sum | cut -d' ' -f1; }

# -- 0. nothing to do? ---------------------------------------------------------------------------
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$(stamp_hash)" ]] \
   && "$VPY" -c "import torch_scatter, torch_cluster, gnn_audio" 2>/dev/null; then
  log "environment up to date: $VENV"
  exit 0
fi
START=$SECONDS

# -- 1. virtual environment ----------------------------------------------------------------------
if [[ ! -x "$VPY" ]]; then
  log "creating virtual environment $VENV with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
pip_ install -q "setuptools>=69" wheel ninja

# -- 2. torch + torchaudio (must match) -----------------------------------------------------------
# numpy and scipy too: torch_cluster imports scipy, and the extension check below imports it
log "installing $TORCH_PIN $TORCHAUDIO_PIN"
pip_ install -q "$TORCH_PIN" "$TORCHAUDIO_PIN" numpy scipy

# -- 3. torch-scatter / torch-cluster --------------------------------------------------------------
KEY="$("$VPY" - <<'EOF'
import os, platform, sys, torch
cuda = os.environ.get("FORCE_CUDA", "0") == "1" or torch.cuda.is_available()
print(f"torch-{torch.__version__}-cp{sys.version_info[0]}{sys.version_info[1]}"
      f"-{platform.machine()}-{'cuda' if cuda else 'cpu'}")
EOF
)"
CACHE="${GNN_AUDIO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gnn_audio/wheels}/$KEY"
mkdir -p "$CACHE"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# verify_wheel WHEEL MODULE SMOKE: unpack the wheel aside and run SMOKE against the venv's torch.
verify_wheel() {
  "$VPY" - "$1" "$2" "$3" <<'EOF' >"$WORK/verify.log" 2>&1
import importlib, sys, tempfile, zipfile
wheel, module, smoke = sys.argv[1:4]
with tempfile.TemporaryDirectory() as d:
    zipfile.ZipFile(wheel).extractall(d)
    sys.path.insert(0, d)
    import torch
    globals()[module] = importlib.import_module(module)
    eval(smoke)
EOF
}

cached_wheel() { compgen -G "$CACHE/${1//-/_}-$2*.whl" | head -n 1; }

to_build=()
for spec in "${EXTENSIONS[@]}"; do
  read -r name version module smoke <<<"$spec"
  whl="$(cached_wheel "$name" "$version" || true)"
  if [[ -n "$whl" ]]; then
    log "$name: cached wheel $(basename "$whl")"
    continue
  fi
  # a prebuilt wheel from PIP_FIND_LINKS / pip.conf find-links, never from the index (no wheels there)
  mkdir -p "$WORK/found/$name"
  if pip_ download -q --no-deps --no-index --only-binary=:all: -d "$WORK/found/$name" \
        "$name==$version" >/dev/null 2>&1; then
    whl="$(compgen -G "$WORK/found/$name/*.whl" | head -n 1)"
    if verify_wheel "$whl" "$module" "$smoke"; then
      log "$name: prebuilt wheel $(basename "$whl") from find-links works with this torch"
      cp "$whl" "$CACHE/"
      continue
    fi
    log "$name: prebuilt wheel $(basename "$whl") does not load with this torch; ignoring it:"
    tail -n 1 "$WORK/verify.log" >&2
  fi
  to_build+=("$spec")
done

if (( ${#to_build[@]} )); then
  ncpu="$(nproc 2>/dev/null || echo 2)"
  jobs=$(( ncpu / ${#to_build[@]} )); (( jobs >= 1 )) || jobs=1
  mkdir -p "$VENV/build-logs"
  pids=()
  for spec in "${to_build[@]}"; do
    read -r name version module smoke <<<"$spec"
    log "$name: compiling $version from source (MAX_JOBS=$jobs, log: $VENV/build-logs/$name.log)"
    MAX_JOBS=$jobs pip_ wheel --no-build-isolation --no-deps --no-cache-dir \
      --no-binary "$name" -w "$WORK/built/$name" "$name==$version" \
      >"$VENV/build-logs/$name.log" 2>&1 &
    pids+=($!)
  done
  failed=0
  for i in "${!pids[@]}"; do
    read -r name version module smoke <<<"${to_build[$i]}"
    if ! wait "${pids[$i]}"; then
      log "$name: build FAILED, see $VENV/build-logs/$name.log"; tail -n 30 "$VENV/build-logs/$name.log" >&2
      failed=1; continue
    fi
    whl="$(compgen -G "$WORK/built/$name/*.whl" | head -n 1)"
    if ! verify_wheel "$whl" "$module" "$smoke"; then
      log "$name: the freshly built wheel does not load:"; tail -n 5 "$WORK/verify.log" >&2
      failed=1; continue
    fi
    mv "$whl" "$CACHE/"
    log "$name: built and cached in $CACHE"
  done
  (( failed == 0 )) || exit 1
fi

ext_pins=()
for spec in "${EXTENSIONS[@]}"; do
  read -r name version module smoke <<<"$spec"
  ext_pins+=("$(cached_wheel "$name" "$version")")
done
pip_ install -q --no-deps --force-reinstall "${ext_pins[@]}"

# -- 4. gnn_audio ----------------------------------------------------------------------------------
log "installing gnn_audio[$EXTRAS] (editable)"
pip_ install -q -e "$ROOT[$EXTRAS]" "$TORCH_PIN" "$TORCHAUDIO_PIN"

# -- 5. check and stamp ------------------------------------------------------------------------------
checked="$(pip_ check)" || { printf '%s\n' "$checked"; log "pip check FAILED"; exit 1; }
log "pip check: $checked"
versions="$("$VPY" -c "import torch, torchaudio, torch_geometric, torch_scatter, torch_cluster, gnn_audio; \
print(f'torch {torch.__version__}, torchaudio {torchaudio.__version__}, torch_geometric {torch_geometric.__version__}, '
      f'torch_scatter {torch_scatter.__version__}, torch_cluster {torch_cluster.__version__}, gnn_audio {gnn_audio.__version__}')")"
log "$versions"
stamp_hash >"$STAMP"
log "done in $((SECONDS - START)) s: activate with 'source ${VENV#"$ROOT"/}/bin/activate'"
