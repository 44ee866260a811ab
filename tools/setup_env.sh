#!/usr/bin/env bash
# Build (or reuse) the isolated environment mmvit_ext runs in.
#
#   MMVIT_VENV   virtual environment folder (default: <checkout>/.venv)
#   MMVIT_CACHE  cache for the compiled mmcv wheel (default: ~/.cache/mmvit_ext)
#   PYTHON       interpreter that creates the venv (default: python3, must be 3.8-3.12)
#
# A second run on a ready environment only re-verifies it (a few seconds): the venv carries a stamp of the
# requirement files and this script, and the mmcv wheel (a ~8 minute build on 2 cores) is cached outside the
# checkout, keyed by mmcv version, torch version and Python ABI.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MMVIT_VENV:-$ROOT/.venv}
CACHE=${MMVIT_CACHE:-$HOME/.cache/mmvit_ext}
PYTHON=${PYTHON:-python3}
MMCV_VERSION=2.1.0
LOG=$CACHE/setup.log

step() { printf '\n[setup] %s\n' "$*"; }
fail() {
  printf '\n[setup] FAILED: %s\n' "$1" >&2
  [ -n "${2:-}" ] && printf '[setup] what to do: %s\n' "$2" >&2
  [ -f "$LOG" ] && printf '[setup] last lines of %s:\n' "$LOG" >&2 && tail -n 25 "$LOG" >&2
  exit 1
}
# Run a command with its output in the log; on failure show the reason and the advice.
run() {
  local what=$1 advice=$2; shift 2
  "$@" >>"$LOG" 2>&1 || fail "$what" "$advice"
}

mkdir -p "$CACHE/wheels"
: >"$LOG"

stamp_value() {
  cat "$ROOT/requirements/stack.txt" "$ROOT/requirements/runtime.txt" "$ROOT/requirements/tests.txt" \
    "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" | sha256sum | cut -d' ' -f1
}
STAMP=$VENV/.mmvit_ext_stamp
PY=$VENV/bin/python

# The machine's pip configuration may point at a folder with a CPU-only torch wheel that pip prefers over the
# registry's build, and that wheel breaks torchvision (its ops link against the CUDA libraries). Use the registry.
export PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_NO_INDEX || true
pip_install() { "$PY" -m pip install --constraint "$ROOT/requirements/stack.txt" "$@"; }

verify() {
  "$PY" - <<'EOF'
import sys
import torch
import torchvision
from torchvision.ops import nms
boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
assert keep.tolist() == [0, 2], f'torchvision.ops.nms returned {keep.tolist()}'
from mmcv.ops import DeformConv2d
conv = DeformConv2d(4, 8, kernel_size=2, stride=2)
offset = torch.zeros(1, 8, 4, 4)
out = conv(torch.randn(1, 4, 8, 8), offset)
assert out.shape == (1, 8, 4, 4), out.shape
import mmdet, mmseg, mmpretrain  # noqa: F401  (each asserts the mmcv/mmengine versions it needs)
import mmvit_ext
print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, mmcv ops OK, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}, '
      f'mmvit_ext {mmvit_ext.__version__}')
EOF
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$(stamp_value)" ] && [ -x "$PY" ]; then
  if out=$(verify 2>&1); then
    echo "[setup] environment ready: $VENV ($out)"
    exit 0
  fi
  echo "[setup] environment at $VENV is stamped but does not verify; repairing it"
fi

step "virtual environment: $VENV"
command -v "$PYTHON" >/dev/null || fail "no interpreter '$PYTHON'" "install Python 3.8-3.12 or set PYTHON=/path/to/python3"
[ -x "$PY" ] || run "creating the venv" "check that '$PYTHON -m venv' works (Debian: apt-get install python3-venv)" \
  "$PYTHON" -m venv "$VENV"
run "upgrading pip/setuptools" "check network access to PyPI" \
  pip_install --upgrade pip "setuptools<82" wheel ninja packaging

step "torch + torchvision (standard registry builds; several GB on first install)"
run "installing torch/torchvision" "check network access to PyPI and free disk space (about 6 GB)" \
  pip_install torch torchvision

ABI=$("$PY" -c 'import sys; print(f"cp{sys.version_info.major}{sys.version_info.minor}")')
TORCH=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
WHEEL_DIR=$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH-$ABI
if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  step "building mmcv $MMCV_VERSION with ops against torch $TORCH ($ABI): about 8 minutes on 2 cores, cached in $WHEEL_DIR"
  run "installing mmengine" "check network access to PyPI" pip_install mmengine
  rm -rf "$WHEEL_DIR.tmp" && mkdir -p "$WHEEL_DIR.tmp"
  # --no-build-isolation: the build must see the installed torch, or mmcv silently builds without its ops.
  run "building the mmcv wheel" \
    "read the log above; a compiler (gcc/g++) and the Python headers are required; GPU users build with FORCE_CUDA=1" \
    env MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel --no-build-isolation --no-deps --wheel-dir "$WHEEL_DIR.tmp" "mmcv==$MMCV_VERSION"
  mv "$WHEEL_DIR.tmp" "$WHEEL_DIR"
else
  step "reusing cached mmcv wheel from $WHEEL_DIR"
fi

step "OpenMMLab stack and mmvit_ext"
run "installing mmcv/mmdet/mmseg/mmpretrain" "check network access to PyPI" \
  pip_install "$WHEEL_DIR"/mmcv-*.whl mmengine mmdet mmsegmentation mmpretrain \
  -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
run "installing mmvit_ext (editable)" "check setup.py" \
  pip_install --no-build-isolation --no-deps -e "$ROOT"

step "verifying the stack"
out=$(verify 2>&1) || { echo "$out" | tail -n 20 >&2; fail "the installed stack does not work (see the error above)" \
  "delete $VENV and run again; if mmcv ops are missing, delete $CACHE/wheels and run again"; }
echo "[setup] $out"
stamp_value >"$STAMP"
echo "[setup] environment ready: $VENV"
