#!/usr/bin/python3
"""Checks deploy/: the Kubernetes manifests parse (PyYAML) and describe a LeaderWorkerSet whose
containers start `tessera serve`; the Slurm and mpirun scripts pass `bash -n`; and every flag any
of them passes to `tessera serve` appears in `tessera serve --help`.
Usage: check_deploy.py DEPLOY_DIR TESSERA_BINARY"""
import pathlib
import re
import subprocess
import sys

import yaml


def serve_commands(text):
    """The `tessera serve ...` command lines in text, with shell line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    return [m.group(0) for m in re.finditer(r"tessera serve[^\n]*", joined)]


def flags_of(command):
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", command))


def main():
    deploy, binary = pathlib.Path(sys.argv[1]), sys.argv[2]
    errors, flags, commands = [], set(), 0
    for manifest in sorted(deploy.glob("kubernetes/*.yaml")):
        docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        lws = [d for d in docs if d.get("kind") == "LeaderWorkerSet"]
        if not lws:
            errors.append(f"{manifest}: no LeaderWorkerSet document")
        for d in lws:
            tmpl = d["spec"]["leaderWorkerTemplate"]
            if int(tmpl.get("size", 0)) < 2:
                errors.append(f"{manifest}: leaderWorkerTemplate.size must span at least 2 pods")
            for role in ("leaderTemplate", "workerTemplate"):
                for c in tmpl[role]["spec"]["containers"]:
                    text = " ".join(c.get("command", []) + c.get("args", []))
                    found = serve_commands(text)
                    if not found:
                        errors.append(f"{manifest}: {role} container {c['name']} does not run tessera serve")
                    env = {e["name"]: e.get("value") for e in c.get("env", [])}
                    if env.get("NCCL_NVLS_ENABLE") != "0":
                        errors.append(f"{manifest}: {role} must set NCCL_NVLS_ENABLE=0")
                    for cmd in found:
                        commands += 1
                        flags |= flags_of(cmd)
    for script in sorted(list(deploy.glob("slurm/*")) + list(deploy.glob("mpirun/*"))):
        r = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        if r.returncode != 0:
            errors.append(f"{script}: bash -n failed: {r.stderr.strip()}")
        found = serve_commands(script.read_text())
        if not found:
            errors.append(f"{script}: does not run tessera serve")
        for cmd in found:
            commands += 1
            flags |= flags_of(cmd)
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True)
    if help_text.returncode != 0:
        errors.append(f"`{binary} serve --help` failed: {help_text.stderr.strip()}")
    known = flags_of(help_text.stdout)
    for f in sorted(flags - known):
        errors.append(f"flag {f} used in deploy/ is not in `tessera serve --help`")
    for f in ("--tp", "--nnodes", "--rendezvous"):
        if f not in flags:
            errors.append(f"deploy/ never passes {f}")
    if errors:
        print("\n".join(errors))
        return 1
    print(f"deploy/: {commands} tessera serve commands, {len(flags)} distinct flags, all in `tessera serve --help`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
