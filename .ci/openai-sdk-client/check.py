"""The real OpenAI Python SDK against a running modelreg: `.ci/openai-sdk` starts the server
and runs this with its address and an owner token.

The SDK's `client.models.list()` reads one response and never follows `has_more`, so the
server must return every usable model at once; `client.models.retrieve(id)` must answer the
list's object, and raise NotFoundError for a DISABLED or unknown model.
"""

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai

ADDR, TOKEN = sys.argv[1], sys.argv[2]
PROJECT = "sdk"
COUNT = 1_005
HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "X-Project-ID": PROJECT,
    "Content-Type": "application/json",
}


def call(method, path, body=None):
    return send(method, path, body)[0]


def send(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ADDR + path, data=data, method=method, headers=HEADERS)
    with urllib.request.urlopen(req, timeout=30) as res:
        return res.status, json.loads(res.read() or b"null")


def create(i):
    body = {
        "name": f"SDK model {i}",
        "resource_uri": f"sdk-{i:05}",
        "litellm_model": "openai/gpt-4o-mini",
        "credentials": {"api_key": "sk-sdk-check"},
    }
    return call("POST", "/assets/models", body)


# Concurrent creates share the server's group commits, so 1,005 take a few seconds.
with ThreadPoolExecutor(max_workers=16) as pool:
    statuses = list(pool.map(create, range(COUNT)))
assert statuses == [201] * COUNT, sorted(set(statuses))
assert call("PATCH", "/assets/models/sdk-00500", {"status": "DISABLED"}) == 200
usable = [f"sdk-{i:05}" for i in range(COUNT) if i != 500]

client = openai.OpenAI(
    base_url=ADDR + "/v1",
    api_key=TOKEN,
    default_headers={"X-Project-ID": PROJECT},
    max_retries=0,
)

listed = [m.id for m in client.models.list()]
assert len(listed) == len(usable), f"models.list() gave {len(listed)} of {len(usable)} models"
assert listed == usable, "models.list() is not every usable model in resource_uri order"

model = client.models.retrieve("sdk-01004")
assert (model.id, model.object, model.owned_by) == ("sdk-01004", "model", "openai"), model
assert model.created > 1_700_000_000, model

# The catalog's metadata comes through the SDK's own objects, in OpenRouter's names: every
# model was created as openai/gpt-4o-mini with no metadata, so each carries that entry's.
_, entry = send("GET", "/assets/catalog/gpt-4o-mini")
extra = model.to_dict()
assert extra["context_length"] == entry["max_input_tokens"], extra
assert extra["max_output_tokens"] == entry["max_output_tokens"], extra
assert extra["top_provider"]["context_length"] == entry["max_input_tokens"], extra
assert float(extra["pricing"]["prompt"]) == entry["input_cost_per_token"], extra
assert float(extra["pricing"]["completion"]) == entry["output_cost_per_token"], extra
assert "e" not in extra["pricing"]["prompt"].lower(), "prices are decimal strings"
assert "function_calling" in extra["capabilities"] and "tools" in extra["supported_parameters"], extra
in_list = next(m for m in client.models.list() if m.id == "sdk-00007").to_dict()
assert in_list["pricing"] == extra["pricing"], in_list

for missing in ["sdk-00500", "no-such-model"]:
    try:
        client.models.retrieve(missing)
    except openai.NotFoundError as e:
        assert e.body["code"] == "RESOURCE_NOT_FOUND", e.body
    else:
        raise AssertionError(f"models.retrieve({missing!r}) did not raise NotFoundError")

print(
    f"openai-sdk: openai {openai.__version__}: models.list() gave all {len(listed)} usable "
    "models with their context length and prices; models.retrieve() found one and raised "
    "NotFoundError for DISABLED and unknown"
)
