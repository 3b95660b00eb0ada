#!/usr/bin/env python3
# A tensor-parallel `tessera serve` whose rank 1 dies mid-request (SIGKILL): the stream in flight ends
# with an error within seconds instead of hanging, requests after the loss are refused (503) or find the
# server gone, never hang, and the server exits non-zero on its own. Real processes only: the server
# spawns its ranks itself and the kill is a real signal to the worker process.
# Usage: tp_rank_loss.py --tessera BIN --serve-args "--device cpu --threads 2 --tp 2 --tp-backend ucx"
# (CI, CPU ranks) or "--device cuda --tp 2 --tp-backend ucx --tp-ranks-per-device 2" (one GPU).
# Exit status 0 when every check holds; each failure is printed with what was seen.
import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import requests

# e2e_device.Server starts `tessera serve` on free loopback ports and waits for /ready: from
# tests/cuda in the source tree, or beside this file where a device script copied both.
sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)),
                os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'cuda')]
from e2e_device import Server  # noqa: E402

MAX_TOKENS = 3000  # far more than can stream before the kill: the stream must end early, with an error


def children(pid):
    """Pids whose parent is pid (read from /proc; the server spawns its ranks directly)."""
    out = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis
        if int(stat[stat.rindex(')') + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tessera', required=True)
    ap.add_argument('--serve-args', required=True)
    ap.add_argument('--label', default='')
    a = ap.parse_args()
    failures = []

    def check(cond, what):
        print(('ok    ' if cond else 'FAIL  ') + what, flush=True)
        if not cond:
            failures.append(what)

    server = Server(a.tessera, shlex.split(a.serve_args), 4096, {})
    proc, base = server.proc, server.base
    workers = []
    try:
        model = requests.get(base + '/v1/models', timeout=30).json()['data'][0]['id']
        workers = children(proc.pid)
        check(len(workers) >= 1, f'the server spawned its other ranks (children: {workers})')
        if not workers:
            return 1
        # The stream in flight: count its tokens, note how and when it ends.
        seen = {'chunks': 0, 'ended': None, 'how': None}
        first_chunks = threading.Event()

        def stream():
            body = {'model': model, 'prompt': 'Once upon a time', 'max_tokens': MAX_TOKENS, 'temperature': 0,
                    'ignore_eos': True, 'stream': True}
            try:
                with requests.post(base + '/v1/completions', json=body, stream=True, timeout=(10, 60)) as r:
                    if r.status_code != 200:
                        seen['how'] = f'HTTP {r.status_code}'
                        return
                    for line in r.iter_lines():
                        if not line.startswith(b'data: '):
                            continue
                        data = line[6:]
                        if data == b'[DONE]':
                            seen['how'] = seen['how'] or 'done'
                            break
                        event = json.loads(data)
                        if 'error' in event:
                            seen['how'] = 'error event: ' + json.dumps(event['error'])[:200]
                            break
                        seen['chunks'] += 1
                        if seen['chunks'] >= 5:
                            first_chunks.set()
                        if event['choices'][0].get('finish_reason'):
                            seen['how'] = 'finished: ' + str(event['choices'][0]['finish_reason'])
                if seen['how'] is None:
                    seen['how'] = 'connection closed'
            except requests.RequestException as e:
                seen['how'] = f'{type(e).__name__}'
            finally:
                seen['ended'] = time.time()
                first_chunks.set()

        t = threading.Thread(target=stream, daemon=True)
        t.start()
        check(first_chunks.wait(120) and seen['chunks'] >= 5, f'the stream was under way ({seen["chunks"]} chunks)')
        killed_at = time.time()
        for w in workers:
            os.kill(w, signal.SIGKILL)
        print(f'SIGKILL to rank process(es) {workers} after {seen["chunks"]} chunks', flush=True)
        t.join(30)
        ended = seen['ended']
        check(ended is not None and ended - killed_at < 15,
              f'the stream in flight ended within 15 s of the kill (after {ended - killed_at:.1f} s: {seen["how"]})'
              if ended else 'the stream in flight ended within 15 s of the kill (still open after 30 s)')
        check(seen['chunks'] < MAX_TOKENS and not str(seen['how']).startswith('finished'),
              f'it did not complete normally ({seen["chunks"]} of {MAX_TOKENS} chunks, {seen["how"]})')
        # A request after the loss: refused or no server, within its timeout (never a hang).
        try:
            r = requests.post(base + '/v1/completions', timeout=20,
                              json={'model': model, 'prompt': 'Hello', 'max_tokens': 4, 'temperature': 0})
            check(r.status_code == 503, f'a request after the loss is refused with 503 (got {r.status_code}: '
                                        f'{r.text[:200]})')
        except requests.ConnectionError:
            check(True, 'a request after the loss found the server gone (connection refused)')
        except requests.Timeout:
            check(False, 'a request after the loss hung for 20 s')
        try:
            code = proc.wait(timeout=60)
            check(code != 0, f'the server exited on its own, non-zero ({code}), '
                             f'{time.time() - killed_at:.1f} s after the kill')
        except subprocess.TimeoutExpired:
            check(False, 'the server was still running 60 s after losing a rank')
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for w in workers:  # a rank the server failed to stop must not outlive the test
            try:
                os.kill(w, signal.SIGKILL)
            except ProcessLookupError:
                pass
        tail = '\n'.join(l for l in server.log_tail().splitlines() if 'rank' in l.lower() or 'error' in l.lower())
        print(tail[-2000:])
    label = f' [{a.label}]' if a.label else ''
    print(f'tp_rank_loss{label}: {"passed" if not failures else "FAILED: " + "; ".join(failures)}', flush=True)
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
