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
    --host 0.0.0.0 --http-port 8000
