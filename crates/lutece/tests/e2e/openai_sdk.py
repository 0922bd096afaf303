"""The official openai SDK, unmodified, against a running lutece: only base_url and the key change.

Usage: python3 openai_sdk.py BASE_URL API_KEY MODEL EMBEDDING_MODEL LIMITED_KEY BUDGET_KEY,
where LIMITED_KEY's tenant may send one request a minute and BUDGET_KEY may use one token a
month. Exits non-zero on the first failed check.
"""
import json
import math
import pathlib
import sys

import urllib.request
import openai

base, key, model, embedder, limited_key, budget_key = sys.argv[1:7]
client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)

# Models.
ids = [m.id for m in client.models.list()]
assert model in ids and embedder in ids, ids

# Chat, plain.
ask = [{"role": "user", "content": "What is 2+2?"}]
r = client.chat.completions.create(model=model, messages=ask, temperature=0, max_tokens=16)
answer = r.choices[0].message.content
assert r.object == "chat.completion" and r.choices[0].message.role == "assistant", r
assert "4" in answer, answer
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0, r.usage

# Chat, streamed with usage: the same text as the plain answer.
chunks = list(client.chat.completions.create(
    model=model, messages=ask, temperature=0, max_tokens=16, stream=True,
    stream_options={"include_usage": True}))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert text == answer, (text, answer)
assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == r.usage.completion_tokens
assert all(c.usage is None for c in chunks[:-1])
assert chunks[-2].choices[0].finish_reason in ("stop", "length")
# Without include_usage there is no usage chunk.
plain = list(client.chat.completions.create(model=model, messages=ask, max_tokens=4, stream=True))
assert all(c.choices and c.usage is None for c in plain), plain

# The stream's framing, line by line.
request = urllib.request.Request(
    f"{base}/v1/chat/completions", method="POST",
    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    data=json.dumps({"model": model, "messages": ask, "max_tokens": 8, "stream": True}).encode())
with urllib.request.urlopen(request) as raw:
    assert raw.status == 200 and raw.headers["content-type"].startswith("text/event-stream")
    body = raw.read().decode()
events = body.split("\n\n")
assert events[-1] == "" and events[-2] == "data: [DONE]", events[-3:]
for event in events[:-2]:
    assert event.startswith("data: {") and "\n" not in event, repr(event)
    json.loads(event[len("data: "):])

# Completions, seeds, stop sequences.
c = client.completions.create(model=model, prompt="The sky is", max_tokens=8, temperature=0)
assert c.object == "text_completion" and c.choices[0].text, c
seeded = [client.chat.completions.create(model=model, messages=ask, temperature=1.0, seed=5,
                                         max_tokens=16, n=2) for _ in range(2)]
assert [x.message.content for x in seeded[0].choices] == [x.message.content for x in seeded[1].choices]
s = client.completions.create(model=model, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 7"])
assert s.choices[0].finish_reason == "stop" and "7" not in s.choices[0].text, s

# Embeddings: the SDK asks for base64 by default and decodes it; the vectors are
# sentence-transformers' (its own output, kept in lutece-engine's test data).
reference = json.loads((pathlib.Path(__file__).resolve().parents[3]
                        / "lutece-engine/tests/data/all-minilm-l6-v2.json").read_text())["cases"]
# (Not the empty text, which the API refuses, nor the one sentence-transformers truncated to
# 256 tokens, which the API refuses as too long, as OpenAI's does.)
reference = [c for c in reference if c["text"] and c["tokens"] < 256]
texts = [c["text"] for c in reference]
e = client.embeddings.create(model=embedder, input=texts)
assert e.object == "list" and [d.index for d in e.data] == list(range(len(texts))), e
assert e.usage.prompt_tokens == e.usage.total_tokens == sum(c["tokens"] for c in reference)

def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

for d, case in zip(e.data, reference):
    assert len(d.embedding) == 384, len(d.embedding)
    assert cosine(d.embedding, case["embedding"]) >= 0.999, (case["text"], cosine(d.embedding, case["embedding"]))
v = [d.embedding for d in e.data]
assert cosine(v[0], v[1]) > cosine(v[0], v[2]) + 0.2  # eating food / eating bread / a baby
floats = client.embeddings.create(model=embedder, input=texts[0], encoding_format="float")
assert max(abs(a - b) for a, b in zip(floats.data[0].embedding, v[0])) < 1e-6

# Errors the SDK turns into its exception classes.
def raises(kind, call):
    try:
        call()
    except kind as e:
        assert isinstance(e.body, dict) and "message" in e.body, e.body
        return e
    raise AssertionError(f"expected {kind.__name__}")

raises(openai.AuthenticationError, lambda: openai.OpenAI(
    base_url=f"{base}/v1", api_key="wrong", max_retries=0).models.list())
raises(openai.NotFoundError, lambda: client.chat.completions.create(model="no-such-model", messages=ask))
e = raises(openai.BadRequestError, lambda: client.chat.completions.create(
    model=model, messages=ask, temperature=9))
assert e.body.get("param") == "temperature", e.body
raises(openai.BadRequestError, lambda: client.chat.completions.create(
    model=model, messages=[{"role": "user", "content": "word " * 5000}]))
e = raises(openai.BadRequestError, lambda: client.embeddings.create(
    model=embedder, input=["short", "word " * 300]))
assert e.body.get("code") == "context_length_exceeded" and e.body.get("param") == "input[1]", e.body
raises(openai.BadRequestError, lambda: client.embeddings.create(model=model, input="hello"))
raises(openai.BadRequestError, lambda: client.chat.completions.create(model=embedder, messages=ask))
raises(openai.NotFoundError, lambda: client.embeddings.create(model="no-such-model", input="hello"))
limited = openai.OpenAI(base_url=f"{base}/v1", api_key=limited_key, max_retries=0)
limited.chat.completions.create(model=model, messages=ask, max_tokens=2)
e = raises(openai.RateLimitError, lambda: limited.chat.completions.create(
    model=model, messages=ask, max_tokens=2))
assert e.status_code == 429 and int(e.response.headers["retry-after"]) >= 1, e.response.headers
assert e.body.get("code") == "rate_limit_exceeded", e.body
# A used-up monthly budget: the request that crosses it is served, the next is refused.
budgeted = openai.OpenAI(base_url=f"{base}/v1", api_key=budget_key, max_retries=0)
budgeted.chat.completions.create(model=model, messages=ask, max_tokens=2)
e = raises(openai.RateLimitError, lambda: budgeted.chat.completions.create(
    model=model, messages=ask, max_tokens=2))
assert e.body.get("code") == "insufficient_quota", e.body
assert int(e.response.headers["retry-after"]) >= 1, e.response.headers

# A project (the OpenAI-Project header): its tokens are metered to it.
in_project = openai.OpenAI(base_url=f"{base}/v1", api_key=key, project="sdk-project", max_retries=0)
in_project.chat.completions.create(model=model, messages=ask, max_tokens=2)
print("openai SDK: all checks passed")
