"""What `podman kube play` (Debian 12's podman 4.3) can run of a canary folder's Kustomize build:
each Deployment with the claims it mounts, one file per Deployment (so one pod's trouble does not
stop the other's), and the identity Secret as podman's own `secret create` takes it.

Changed for podman 4.3, and only this (each is a podman limit, not a Kubernetes one):
- `ports` are dropped: podman 4.3 publishes every containerPort on the host, so two pods of one
  app collide on 3001 (Kubernetes publishes nothing without a Service);
- `subPath` mounts are dropped: podman 4.3 mounts the whole volume there (the settings file
  becomes a folder); the settings file's creation in the claim is checked instead;
- kinds other than Deployment and PersistentVolumeClaim are left out (Services, routes and the
  NetworkPolicy need a cluster);
- a claim whose volume exists already (EXISTING, comma-separated) is left out: `kubectl apply`
  leaves an existing claim as it is, where podman 4.3 refuses to create its volume again.

  kube_play_adapter.py BUILD.yaml OUTDIR SECRET_NAME EXISTING KEY=VALUE...
Writes OUTDIR/<deployment>.yaml and OUTDIR/secret.json; prints the Deployment names."""
import base64
import json
import os
import sys

import yaml

build, out, secret_name = sys.argv[1], sys.argv[2], sys.argv[3]
existing = set(filter(None, sys.argv[4].split(",")))
docs = [d for d in yaml.safe_load_all(open(build)) if d]
claims = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PersistentVolumeClaim"}
os.makedirs(out, exist_ok=True)
for d in docs:
    if d["kind"] != "Deployment":
        continue
    spec = d["spec"]["template"]["spec"]
    mounted = []
    for v in spec.get("volumes", []):
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim in claims and claim not in existing:
            mounted.append(claims[claim])
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        c.pop("ports", None)
        c["volumeMounts"] = [m for m in c.get("volumeMounts", []) if "subPath" not in m]
    with open(os.path.join(out, d["metadata"]["name"] + ".yaml"), "w") as f:
        yaml.safe_dump_all(mounted + [d], f)
    print(d["metadata"]["name"])
values = dict(kv.split("=", 1) for kv in sys.argv[5:])
with open(os.path.join(out, "secret.json"), "w") as f:
    json.dump({k: base64.b64encode(v.encode()).decode() for k, v in values.items()}, f)
