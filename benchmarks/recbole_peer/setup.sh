#!/usr/bin/env bash
# Create benchmarks/.venv-recbole: RecBole 1.2.1 on a CPU build of torch 2.13.0, separate from
# arborec's environment. Idempotent: does nothing when the environment already imports RecBole
# with the pinned versions. Usage: bash benchmarks/recbole_peer/setup.sh [python]
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/../.venv-recbole"
PYTHON="${1:-${PYTHON:-python3}}"
PY="$VENV/bin/python"

CHECK='
import warnings; warnings.simplefilter("ignore")
import torch, recbole, numpy, pandas
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer
import recbole.model.general_recommender, recbole.model.sequential_recommender
assert torch.__version__.split("+")[0] == "2.13.0", torch.__version__
assert recbole.__version__ == "1.2.1", recbole.__version__
assert numpy.__version__.startswith("1."), numpy.__version__
assert pandas.__version__.startswith("2.2."), pandas.__version__
print(f"recbole {recbole.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, pandas {pandas.__version__}")
'

if [ -x "$PY" ] && versions="$("$PY" -c "$CHECK" 2>/dev/null)"; then
    echo "benchmarks/.venv-recbole is already set up: $versions"
    exit 0
fi

[ -x "$PY" ] || "$PYTHON" -m venv "$VENV"
PIP=("$PY" -m pip install --disable-pip-version-check -q)

# 1. torch first, pinned, CPU build: an unpinned torch (or one pulled in by recbole) brings
#    gigabytes of CUDA packages. The CPU wheel comes from PyTorch's CPU index (TORCH_INDEX_URL,
#    set it empty to skip) or from pip's own configuration (a local wheel folder, a mirror).
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"
if ! "$PY" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null; then
    "${PIP[@]}" "torch==2.13.0" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"}
fi
"$PY" -c 'import torch; v = torch.__version__; print("torch", v); assert v.split("+")[0] == "2.13.0"'
if "$PY" -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
    echo "warning: CUDA packages were installed with torch; a CPU build was expected" >&2
fi

# 2. RecBole without its declared dependencies (they include ray, hyperopt, plotly, thop, ...,
#    needed only by its hyper-parameter search and quick_start), then what its data, model,
#    trainer and evaluator modules import. Found by importing them one by one.
#    pip then reports that ray, plotly, psutil, tabulate and thop are missing: expected.
"${PIP[@]}" --no-deps "recbole==1.2.1"
"${PIP[@]}" "numpy<2" "pandas==2.2.*" "setuptools>=80,<81" \
    "scipy" "scikit-learn" "pyyaml" "tqdm" "colorlog==4.7.2" "colorama==0.4.4" "tensorboard" "texttable"

"$PY" -c "$CHECK"
echo "benchmarks/.venv-recbole is ready"
