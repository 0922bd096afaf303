"""The official mistralai SDK, unmodified, against a running lutece: only server_url (the
platform's URL + /mistral) and the key change.

Usage: python3 mistral_sdk.py BASE_URL API_KEY MODEL EMBEDDING_MODEL. Exits non-zero on the first
failed check.
"""
import sys

from mistralai.client import Mistral, errors

base, key, model, embedder = sys.argv[1:5]
client = Mistral(api_key=key, server_url=f"{base}/mistral")

# Models: Mistral's cards, with what each model can do.
cards = {m.id: m for m in client.models.list().data}
assert cards[model].type == "base" and cards[model].capabilities.completion_chat, cards[model]
assert not cards[embedder].capabilities.completion_chat, cards[embedder]

# Chat, plain, with Mistral's parameter names.
ask = [{"role": "user", "content": "What is 2+2?"}]
r = client.chat.complete(model=model, messages=ask, temperature=0, max_tokens=16)
answer = r.choices[0].message.content
assert "4" in answer, answer
assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0, r.usage

# Streamed: the same text.
events = list(client.chat.stream(model=model, messages=ask, temperature=0, max_tokens=16))
text = "".join(e.data.choices[0].delta.content or "" for e in events if e.data.choices)
assert text == answer, (text, answer)

# random_seed: same seed, same output; safe_prompt and tool_choice "any" are accepted.
seeded = [client.chat.complete(model=model, messages=ask, temperature=1.0, random_seed=7,
                               max_tokens=16).choices[0].message.content for _ in range(2)]
assert seeded[0] == seeded[1], seeded
client.chat.complete(model=model, messages=ask, max_tokens=4, safe_prompt=True)
client.chat.complete(model=model, messages=ask, max_tokens=4, tool_choice="any")

# Embeddings.
e = client.embeddings.create(model=embedder, inputs=["A man is eating food.", "A man is eating a piece of bread."])
assert len(e.data) == 2 and len(e.data[0].embedding) == 384, e
assert e.usage.prompt_tokens == 8 + 11, e.usage

# A request that fails validation: Mistral's 422, raised as HTTPValidationError.
try:
    client.chat.complete(model=model, messages=ask, temperature=9)
    raise AssertionError("temperature 9 was accepted")
except errors.HTTPValidationError as error:
    assert error.raw_response.status_code == 422, error
    detail = error.data.detail[0]
    assert detail.loc == ["body", "temperature"] and "temperature" in detail.msg, detail

# Other errors: the SDK's generic error with the status.
for call, status in [
    (lambda: Mistral(api_key="wrong", server_url=f"{base}/mistral").models.list(), 401),
    (lambda: client.chat.complete(model="no-such-model", messages=ask), 404),
]:
    try:
        call()
        raise AssertionError(f"expected {status}")
    except errors.MistralError as error:
        assert error.raw_response.status_code == status, (status, error)
print("mistralai SDK: all checks passed")
