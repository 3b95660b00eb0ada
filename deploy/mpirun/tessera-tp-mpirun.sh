#!/usr/bin/env bash
# One tensor-parallel job over 2 nodes x 8 GPUs (--tp 16) started with Open MPI's mpirun: one
# process per node (ppr:1:node); OMPI_COMM_WORLD_RANK becomes --node-rank. The first host runs
# rank 0 (server + scheduler) and the rendezvous. The secret file must be readable on every host
# (shared filesystem) or copied there first; mpirun forwards NCCL_NVLS_ENABLE=0.
# Usage: HOSTS=node1,node2 MODEL=/models/llama-3-70b deploy/mpirun/tessera-tp-mpirun.sh
set -euo pipefail

HOSTS=${HOSTS:?set HOSTS=host1,host2}
MODEL=${MODEL:-/models/llama-3-70b}
PORT=${TESSERA_RENDEZVOUS_PORT:-29500}
# The ranks' GEMM tuning choices (each appends .rank<r>): kept across jobs, so a job after the first
# times nothing at start and makes the same choices (a file from another GPU model or library build is
# ignored and rewritten). A shared directory, or one on every node: where it is missing, that node's
# ranks log a warning and time their GEMMs at every start as without it.
TUNING_DIR=${TESSERA_TUNING_DIR:-$HOME/.cache/tessera}
mkdir -p "$TUNING_DIR"
HEAD=${HOSTS%%,*}
NNODES=$(awk -F, '{print NF}' <<< "$HOSTS")
SECRET_FILE=${SECRET_FILE:-$HOME/.tessera-secret}
if [ ! -s "$SECRET_FILE" ]; then
  (umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$SECRET_FILE")
fi

exec mpirun --host "$HOSTS" --map-by ppr:1:node -np "$NNODES" \
  -x NCCL_NVLS_ENABLE=0 \
  tessera serve --model "$MODEL" --device cuda \
    --tp 16 --nnodes "$NNODES" --rendezvous "$HEAD:$PORT" \
    --tp-secret-file "$SECRET_FILE" \
    --gemm-tuning-cache "$TUNING_DIR/gemm-tuning.json" \
    --host 0.0.0.0 --http-port 8000
