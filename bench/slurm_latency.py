#!/usr/bin/env python3
"""The same measurement as platform_latency.py, through Slurm: sbatch → the job's process running.

Usage: bench/slurm_latency.py [--jobs 1000]   (needs a running slurmctld + slurmd; see
docs/BENCHMARKS.md for the single-node configuration used)

Each job runs `date +%s%N` (`sbatch --wrap`); the next is submitted once the previous one has
run, so the figure is latency, not queueing (Slurm cannot give a job a fraction of a CPU).
Prints one JSON object.
"""
import argparse, glob, json, os, statistics, subprocess, tempfile, time

def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=200)
    args = ap.parse_args()
    out = tempfile.mkdtemp(prefix="slurm-bench-")
    submitted = {}
    for _ in range(args.jobs):
        t = time.time_ns()
        job = subprocess.run(["sbatch", "--parsable", "-c", "1", "--mem=16", "-o", f"{out}/%j.out",
                              "--wrap", "date +%s%N"], capture_output=True, text=True, check=True).stdout.strip()
        job = job.split(";")[0]
        submitted[job] = t
        while not (os.path.exists(f"{out}/{job}.out") and os.path.getsize(f"{out}/{job}.out") > 0):
            time.sleep(0.005)
    deadline = time.time() + 600
    while time.time() < deadline:
        done = [f for f in glob.glob(f"{out}/*.out") if os.path.getsize(f) > 0]
        if len(done) >= len(submitted):
            break
        time.sleep(0.5)
    latencies = []
    for job, t in submitted.items():
        path = f"{out}/{job}.out"
        if os.path.exists(path) and os.path.getsize(path) > 0:
            latencies.append((int(open(path).read().strip()) - t) / 1e6)
    print(json.dumps({
        "jobs": len(latencies),
        "submit_to_start_ms": {"p50": round(statistics.median(latencies), 2), "p99": round(percentile(latencies, 99), 2),
                               "max": round(max(latencies), 2)},
    }, indent=2))

if __name__ == "__main__":
    main()
