#!/usr/bin/env python3
"""The gateway against LiteLLM's proxy, side by side, routing to the same fixed-latency upstream.

Usage: bench/gateway.py [--litellm /tmp/litellm-venv/bin/litellm] [--seconds 10]

Builds (release) `lutece` and the load/upstream program (crates/lutece-gateway/benches/
gateway_load.rs), starts `lutece up --no-models`, deploys the upstream as an external engine
(one replica, its port chosen by the platform) and measures, against that same upstream
process:
  - direct: the upstream alone (the floor);
  - lutece: through /v1 with a tenant key that has rate limits and a monthly budget (set high
    enough never to refuse) and metering on (always on);
  - litellm: through `litellm --config` (one worker), with a master key and per-deployment
    rpm/tpm limits, routing to the same upstream.
Two upstream deployments of the same program: `fixed` answers after 5 ms (streams: 50 chunks
20 ms apart), `instant` at once. Added latency is each gateway's percentile minus the direct
one, at 1 and 8 connections (and at 1 against `instant`, the overhead without the upstream's
timer); requests/s at 64 connections; then 1,000 streams at once and the longest wait between
two chunks of any stream. Prints one JSON object.
"""
import argparse, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(url, key, method="GET", body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def wait_for(what, check, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def build():
    # One cargo invocation for both, so that features resolve once and nothing is rebuilt.
    out = subprocess.run(
        ["cargo", "build", "--release", "--locked", "-p", "lutece", "--bin", "lutece",
         "-p", "lutece-gateway", "--bench", "gateway_load", "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    tool = None
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "gateway_load" \
                and msg.get("executable"):
            tool = msg["executable"]
    if not tool:
        sys.exit("gateway_load was not built")
    return os.path.join(ROOT, "target/release/lutece"), tool


def load(tool, mode, url, key, model, *extra):
    out = subprocess.run([tool, mode, "--url", url, "--key", key, "--model", model, *extra],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(tool, urls, key, seconds):
    """Against the `fixed` upstream: 1, 8 and 64 connections and 1,000 streams; against the
    `instant` one: 1 connection (the overhead alone, without the upstream's timer)."""
    result = {}
    for c in (1, 8, 64):
        result[f"c{c}"] = load(tool, "requests", urls["fixed"], key, "fixed", "--concurrency",
                               str(c), "--seconds", str(seconds))
    result["instant_c1"] = load(tool, "requests", urls["instant"], key, "instant",
                                "--concurrency", "1", "--seconds", str(seconds))
    result["streams"] = load(tool, "streams", urls["fixed"], key, "fixed", "--streams", "1000")
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--litellm", default="/tmp/litellm-venv/bin/litellm")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    lutece, tool = build()
    data = tempfile.mkdtemp(prefix="lutece-gw-bench-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    admin = "lut_" + "g" * 40
    env = dict(os.environ, LUTECE_ADMIN_KEY=admin, LUTECE_LOG="warn")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [lutece, "up", "--no-models", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for("lutece", lambda: call(f"{base}/api/v1/nodes", admin))
        # The upstream, as an external engine shared with every tenant: the platform places it
        # and gives it its port.
        upstreams = {}
        for name, latency in (("fixed", 5), ("instant", 0)):
            call(f"{base}/api/v1/deployments", admin, "POST", {
                "name": name, "replicas": 1, "shared": True,
                "resources": {"cpus": "100m", "memory": "64Mi"},
                "command": ["sh", "-c", f"exec {tool} upstream --port $PORT --latency-ms {latency} "
                            "--chunks 50 --chunk-ms 20"]})
            deployment = wait_for(f"the upstream {name} to be ready", lambda: (
                lambda d: d if d["ready"] == 1 else None)(
                    call(f"{base}/api/v1/deployments/{name}", admin)))
            upstreams[name] = deployment["replica_jobs"][0]["endpoint"]
        upstream = upstreams["fixed"]
        # A tenant whose key has limits (never reached) and whose tokens are metered.
        call(f"{base}/api/v1/tenants", admin, "POST", {"name": "bench"})
        limits = {"requests_per_minute": 4_000_000_000, "tokens_per_minute": 10**12,
                  "monthly_token_budget": 10**15}
        call(f"{base}/api/v1/tenants/bench/limits", admin, "PUT", limits)
        key = call(f"{base}/api/v1/keys", admin, "POST", {"tenant": "bench"})
        call(f"{base}/api/v1/keys/{key['id']}/limits", admin, "PUT", limits)
        results = {"upstream": "fixed: 5 ms, streams of 50 chunks 20 ms apart; instant: 0 ms"}
        results["direct"] = measure(tool, upstreams, "none", args.seconds)
        results["lutece"] = measure(tool, {n: base for n in upstreams}, key["key"], args.seconds)
        if shutil.which(args.litellm) or os.path.exists(args.litellm):
            results["litellm"] = run_litellm(args, tool, upstreams)
        print(json.dumps(results, indent=1))
    finally:
        # Replicas outlive the platform by design (adopted at its next start): delete the
        # deployments first, so their processes are stopped.
        for name in ("fixed", "instant"):
            try:
                call(f"{base}/api/v1/deployments/{name}", admin, "DELETE")
            except OSError:
                pass
        try:
            ended = ("succeeded", "failed", "cancelled")
            wait_for("the upstreams to stop", lambda: all(
                j["state"] in ended for j in call(f"{base}/api/v1/jobs?limit=100", admin)),
                timeout=30)
        except SystemExit:
            pass
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(data, ignore_errors=True)


def run_litellm(args, tool, upstreams):
    port = free_port()
    master = "sk-bench-master"
    config = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    config.write("model_list:\n")
    for name, url in upstreams.items():
        config.write(f"""  - model_name: {name}
    litellm_params:
      model: openai/{name}
      api_base: {url}/v1
      api_key: none
      rpm: 4000000000
      tpm: 1000000000000
""")
    config.write(f"""general_settings:
  master_key: {master}
litellm_settings:
  telemetry: false
""")
    config.close()
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    proxy = subprocess.Popen([args.litellm, "--config", config.name, "--host", "127.0.0.1",
                              "--port", str(port), "--num_workers", "1"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for("litellm", lambda: call(f"{base}/v1/models", master), timeout=180)
        return measure(tool, {n: base for n in upstreams}, master, args.seconds)
    finally:
        proxy.terminate()
        proxy.wait()
        os.unlink(config.name)


if __name__ == "__main__":
    main()
