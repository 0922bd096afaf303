#!/usr/bin/env python3
"""Measures `lutece up` to ready, and job submit → process started on the local agent.

Usage: bench/platform_latency.py [--jobs 1000] [--binary target/release/lutece]

Each job runs `date +%s%N`, the next submitted once the previous one has ended (latency, not
queueing): the job's own process prints the moment it runs, so the figure
includes scheduling, the agent's pickup, the supervisor (shim) and the exec. Side by side:
the floor, the same program started directly by this script (fork + exec, no platform).
Standard library only; prints one JSON object.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, tempfile, time, urllib.request

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def call(url, key, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        raw = r.read()
        return json.loads(raw) if r.headers.get("content-type", "").startswith("application/json") else raw.decode()

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--binary", default="target/release/lutece")
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="lutece-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    key = "lut_" + "b" * 40
    env = dict(os.environ, LUTECE_ADMIN_KEY=key, LUTECE_LOG="warn")
    t0 = time.monotonic()
    up = subprocess.Popen([args.binary, "up", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                nodes = call(f"{base}/api/v1/nodes", key)
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(0.005)
        ready_s = time.monotonic() - t0

        latencies, ids = [], []
        for _ in range(args.jobs):
            submitted = time.time_ns()
            job = call(f"{base}/api/v1/jobs", key, "POST",
                       {"command": ["date", "+%s%N"], "resources": {"cpus": "100m", "memory": "16Mi"}})
            ids.append((job["id"], submitted))
            # One job at a time: latency, not queueing.
            while call(f"{base}/api/v1/jobs/{job['id']}", key)["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.002)
        for job_id, submitted in ids:
            while call(f"{base}/api/v1/jobs/{job_id}", key)["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.02)
            started = int(call(f"{base}/api/v1/jobs/{job_id}/logs", key).strip())
            latencies.append((started - submitted) / 1e6)

        floor = []
        for _ in range(200):
            t = time.time_ns()
            started = int(subprocess.run(["date", "+%s%N"], capture_output=True, text=True).stdout.strip())
            floor.append((started - t) / 1e6)
    finally:
        up.terminate()
        up.wait()
        shutil.rmtree(data, ignore_errors=True)
    print(json.dumps({
        "jobs": len(latencies),
        "up_to_ready_s": round(ready_s, 3),
        "submit_to_start_ms": {"p50": round(statistics.median(latencies), 2), "p99": round(percentile(latencies, 99), 2),
                               "max": round(max(latencies), 2)},
        "direct_exec_ms": {"p50": round(statistics.median(floor), 2), "p99": round(percentile(floor, 99), 2)},
    }, indent=2))

if __name__ == "__main__":
    main()
