#!/usr/bin/env bash
# Usage: bash tools/dist_train.sh CONFIG CHECKPOINT GPUS [test.py args]   (multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT)
# Without CUDA the processes test on CPU with the gloo backend.
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
HERE=$(dirname "$0")
PY=${PYTHON:-$HERE/../.venv/bin/python}
[ -x "$PY" ] || PY=python

PYTHONPATH="$HERE/..":$PYTHONPATH \
exec "$PY" -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$HERE/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
