"""The official openai SDK, unmodified, against a running lutece: only base_url and the key change.

Usage: python3 openai_sdk.py BASE_URL API_KEY MODEL LIMITED_KEY, where LIMITED_KEY's tenant may
send one request a minute. Exits non-zero on the first failed check.
"""
import json
import sys

import urllib.request
import openai

base, key, model, limited_key = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = openai.OpenAI(base_url=f"{base}/v1", api_key=key, max_retries=0)

# Models.
ids = [m.id for m in client.models.list()]
assert model in ids, ids

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
limited = openai.OpenAI(base_url=f"{base}/v1", api_key=limited_key, max_retries=0)
limited.chat.completions.create(model=model, messages=ask, max_tokens=2)
e = raises(openai.RateLimitError, lambda: limited.chat.completions.create(
    model=model, messages=ask, max_tokens=2))
assert e.status_code == 429 and int(e.response.headers["retry-after"]) >= 1, e.response.headers
assert e.body.get("code") == "rate_limit_exceeded", e.body
print("openai SDK: all checks passed")
