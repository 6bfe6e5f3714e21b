"""Istio-shaped and cAdvisor-shaped series of two versions, for `stamp canary analyze` tests,
scraped by a real Prometheus. Each scenario is a namespace of its own; counters grow at a fixed
rate from the exporter's start, so any window sees the same rates.

  mesh_exporter.py --port-file F"""
import argparse
import http.server
import os
import time

BUCKETS = [50, 100, 200, 500, 1000, 2000, 5000]
# cumulative share of requests at or under each bucket; average response time in ms
FAST = ([0.2, 0.6, 0.97, 1.0, 1.0, 1.0, 1.0], 100.0)
TAIL = ([0.25, 0.7, 0.9, 0.92, 1.0, 1.0, 1.0], 110.0)
MIB = 1 << 20


def version(v, rps, errors, latency=FAST, memory=500 * MIB):
    return {"version": v, "rps": rps, "errors": errors, "latency": latency, "memory": memory}


STABLE = version("v2.0", 40, 0.001)
SCENARIOS = {
    "healthy": [STABLE, version("v2.1-canary", 20, 0.001, memory=520 * MIB)],
    "errors": [STABLE, version("v2.1-canary", 20, 0.05)],
    "slow": [STABLE, version("v2.1-canary", 20, 0.001, latency=TAIL)],
    "memory": [STABLE, version("v2.1-canary", 20, 0.001, memory=1536 * MIB)],
    "quiet": [STABLE, version("v2.1-canary", 0.2, 0.0)],
    "quoted": [STABLE, version('v2.1 "rc" \\ x', 20, 0.001)],
    # Argo Rollouts: pods named by their ReplicaSet's hash; the version from kube_pod_labels.
    "argo": [STABLE, version("v2.1-canary", 20, 0.001, memory=520 * MIB)],
}
ARGO_PODS = {"stable": "anything-llm-6c8d5f7b9c-x2k4p", "canary": "anything-llm-58b4d9f6d-q9w7e"}
START = time.time()


def esc(s):
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics():
    t = time.time() - START
    out = []
    for ns, versions in SCENARIOS.items():
        for track, v in zip(["stable", "canary"], versions):
            base = (
                f'reporter="destination",destination_workload_namespace="{ns}",'
                f'destination_app="anything-llm",destination_version="{esc(v["version"])}",'
                f'destination_workload="anything-llm-{track}"'
            )
            total = v["rps"] * t
            bad = total * v["errors"]
            out.append(f'istio_requests_total{{{base},response_code="200"}} {total - bad:.3f}')
            out.append(f'istio_requests_total{{{base},response_code="503"}} {bad:.3f}')
            shares, avg = v["latency"]
            for le, share in zip(BUCKETS, shares):
                out.append(f'istio_request_duration_milliseconds_bucket{{{base},le="{le}"}} {total * share:.3f}')
            out.append(f'istio_request_duration_milliseconds_bucket{{{base},le="+Inf"}} {total:.3f}')
            out.append(f"istio_request_duration_milliseconds_sum{{{base}}} {total * avg:.3f}")
            out.append(f"istio_request_duration_milliseconds_count{{{base}}} {total:.3f}")
            names = [ARGO_PODS[track]] if ns == "argo" else [f"anything-llm-{track}-7d9f8b-{i}" for i in range(2)]
            for name in names:
                pod = f'namespace="{ns}",pod="{name}"'
                if ns == "argo":
                    out.append(f'kube_pod_labels{{{pod},label_app="anything-llm",label_version="{v["version"]}"}} 1')
                out.append(f'container_memory_working_set_bytes{{{pod},container="app"}} {v["memory"]}')
                # The Istio sidecar beside the app, which a query of the app's memory must leave out.
                out.append(f'container_memory_working_set_bytes{{{pod},container="istio-proxy"}} {80 * MIB}')
                # The pause container and the pod's own cgroup, which a query must leave out.
                out.append(f'container_memory_working_set_bytes{{{pod},container="POD"}} {MIB}')
                out.append(f'container_memory_working_set_bytes{{{pod},container=""}} {v["memory"] + MIB}')
    return ("\n".join(out) + "\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = metrics()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


p = argparse.ArgumentParser()
p.add_argument("--port-file", required=True)
a = p.parse_args()
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(a.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(a.port_file + ".tmp", a.port_file)
server.serve_forever()
