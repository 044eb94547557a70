"""LiteLLM reads modelreg's export as it will in production: PyYAML (YAML 1.1), then a Router.

    python litellm_check.py create BASE_URL TOKEN PROJECT             # the models, through the API
    python litellm_check.py check CONFIG_YAML BASE_URL TOKEN PROJECT  # the export, through LiteLLM

.ci/litellm runs both around `modelreg export --format litellm`. Each model below holds values
that YAML 1.1 reads as something other than the string they are (dates, booleans, sexagesimal
and underscore integers, floats, nulls, octal, merge and value keys), where YAML 1.2 and
modelreg read them as strings. The check fails unless every one comes back as the exact
string, every deployment, the Azure one included, is in LiteLLM's router, and a request
tagged with a model's tag is routed to it.

It also fails unless LiteLLM prices and limits each deployment as modelreg does: for each one,
the Router's model info (`get_router_model_info`, LiteLLM's cost map merged with the
deployment's `model_info`) must report the input and output cost per token, the cache read and
write costs, the token limits and the capabilities the modelreg API gives for that model, and
a (mocked) request routed to it must cost what those prices say. The models hold values filled
from modelreg's catalog, overrides of them, and an Azure deployment priced by its `base_model`.
"""

import asyncio
import json
import math
import os
import sys
import urllib.request

# Values PyYAML does not read as the string they are when written plain.
AZURE = {
    "resource_uri": "azure-eu",
    "name": "gpt-4o",
    "litellm_model": "azure/gpt-4o-eu",
    # Named by its owner: LiteLLM and modelreg price it by its base model (azure/gpt-4o), here
    # with an output price and capabilities of its own (overrides of the catalog's).
    "base_model": "gpt-4o",
    "output_cost_per_token": 0.000012,
    "capabilities": ["vision", "function_calling"],
    "api_base": "https://example-eu.openai.azure.com/",
    "api_version": "2024-06-01",  # a date in YAML 1.1: LiteLLM drops the deployment
    "description": "2024-01-01",
    "tags": ["on", "1_000", "12:30", "prod"],
    "rpm": 600,
    "tpm": 120000,
    "timeout": 30,
    "default_temperature": 0.2,
    "default_max_tokens": 4096,
    "credentials": {"api_key": "os.environ/AZURE_API_KEY"},
}
# The same model group: LiteLLM's tag routing sends requests without a matching tag here, so
# a request tagged `on` reaches AZURE only if AZURE carries its tags.
AZURE_DEFAULT = {
    "resource_uri": "azure-us",
    "name": "gpt-4o",
    "litellm_model": "azure/gpt-4o-us",
    "api_base": "https://example-us.openai.azure.com/",
    "api_version": "2024-10-21",
    "tags": ["default"],
    "base_model": "gpt-4o",  # every value the catalog's
    "credentials": {"api_key": "os.environ/AZURE_API_KEY"},
}
NAMED_NO = {
    "resource_uri": "no",
    "name": "no",
    "litellm_model": "openai/gpt-4o-mini",
    "description": "12:30:45",
    "tags": ["yes", "1e3", "null", "0755"],
    # Overrides: a price the provider does not charge, a lower output limit.
    "input_cost_per_token": 0.0000002,
    "max_output_tokens": 8000,
    "credentials": {"api_key": "os.environ/OPENAI_API_KEY"},
}
SPECIALS = {
    "resource_uri": "yaml-specials",
    "name": "off",
    "litellm_model": "ollama/llama3",
    "api_base": "http://127.0.0.1:11434",
    "api_version": "1_0",
    "description": "line one\nkey: value # not a comment\n",
    "tags": [
        "y", "n", "Off", "NO", "~", "Null", ".inf", "-.Inf", ".NaN", "0x1F", "0o17", "0b101",
        "+12", "-0", "1:30:00", "190:20:30", "6.8523015e+5", "1e3", "2002-12-14",
        "2001-12-14t21:59:43.10-05:00", "=", "<<", "true", "False", "!tag", "&anchor", "*alias",
        "- x", "@x", "`x", "%x", "? x", "{a}", "[b]", "'q'", "\"dq\"", "#hash", "é ü",
    ],
    "credentials": {"keyless": True},
}
MODELS = [AZURE, AZURE_DEFAULT, NAMED_NO, SPECIALS]

# litellm_params / model_info keys whose values are numbers or booleans, not strings.
NUMBERS = {
    "rpm", "tpm", "timeout", "max_tokens", "temperature", "max_input_tokens", "max_output_tokens",
    "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
}
BOOLEANS = {"deprecated"}

# Each catalogued field of a modelreg model and LiteLLM's name for it.
PRICES_AND_LIMITS = [
    ("input_cost_per_token", "input_cost_per_token"),
    ("output_cost_per_token", "output_cost_per_token"),
    ("cache_read_cost_per_token", "cache_read_input_token_cost"),
    ("cache_write_cost_per_token", "cache_creation_input_token_cost"),
    ("max_input_tokens", "max_input_tokens"),
    ("max_output_tokens", "max_output_tokens"),
]
# modelreg's closed set of capabilities: LiteLLM's `supports_<name>` flags.
CAPABILITIES = [
    "vision", "function_calling", "parallel_function_calling", "tool_choice", "response_schema",
    "reasoning", "prompt_caching", "audio_input", "audio_output", "pdf_input", "video_input",
    "web_search", "computer_use", "system_messages", "assistant_prefill",
]


def api(base, token, project, path, body=None):
    req = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method="GET" if body is None else "POST",
        headers={
            "Authorization": f"Bearer {token}",
            "X-Project-ID": project,
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(req) as res:
        return res.status, json.load(res)


def create(base, token, project):
    for model in MODELS:
        status, _ = api(base, token, project, "/assets/models", model)
        assert status == 201, (model["resource_uri"], status)
    print(f"litellm_check: created {len(MODELS)} models")


def fail(errors):
    for e in errors:
        print(f"litellm_check: FAIL {e}", file=sys.stderr)
    sys.exit(1)


def check_types(entry, errors):
    """Every scalar of the entry is the type LiteLLM expects: numbers where numbers belong, and
    strings everywhere else."""
    where = entry.get("model_info", {}).get("id", entry.get("model_name"))
    if not isinstance(entry.get("model_name"), str):
        errors.append(f"{where}: model_name is {entry.get('model_name')!r}, not a string")
    for section in ("litellm_params", "model_info"):
        for key, value in (entry.get(section) or {}).items():
            if not isinstance(key, str):
                errors.append(f"{where}: {section} key {key!r} is not a string")
            if key in NUMBERS:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            elif key in BOOLEANS or key.startswith("supports_"):
                ok = isinstance(value, bool)
            elif key == "tags":
                ok = isinstance(value, list) and all(isinstance(t, str) for t in value)
            else:
                ok = isinstance(value, str)
            if not ok:
                errors.append(f"{where}: {section}.{key} is {value!r} ({type(value).__name__})")


def check_values(by_id, errors):
    """Each model came back with its exact values."""
    for model in MODELS:
        uri = model["resource_uri"]
        entry = by_id.get(uri)
        if entry is None:
            errors.append(f"{uri}: not in the export (ids: {sorted(map(str, by_id))})")
            continue
        params, info = entry["litellm_params"], entry.get("model_info", {})
        want = [
            ("model_name", entry.get("model_name"), model["name"]),
            ("litellm_params.model", params.get("model"), model["litellm_model"]),
            ("model_info.description", info.get("description"), model.get("description")),
            ("model_info.tags", info.get("tags"), model.get("tags")),
            ("litellm_params.tags", params.get("tags"), model.get("tags")),
            ("litellm_params.api_base", params.get("api_base"), model.get("api_base")),
            ("litellm_params.api_version", params.get("api_version"), model.get("api_version")),
            ("litellm_params.rpm", params.get("rpm"), model.get("rpm")),
            ("litellm_params.tpm", params.get("tpm"), model.get("tpm")),
            ("litellm_params.timeout", params.get("timeout"), model.get("timeout")),
            ("litellm_params.temperature", params.get("temperature"), model.get("default_temperature")),
            ("litellm_params.max_tokens", params.get("max_tokens"), model.get("default_max_tokens")),
        ]
        for field, got, expected in want:
            # Numbers compare as numbers (a timeout of 30 is exported as 30.0); strings and
            # lists must be exactly what was stored.
            if got != expected or (isinstance(expected, (str, list)) and type(got) is not type(expected)):
                errors.append(f"{uri}: {field} is {got!r}, want {expected!r}")


def same_number(got, want):
    """Numbers equal to the last bits a decimal round trip can move (None only to None)."""
    if want is None or got is None:
        return got is None and want is None
    if isinstance(got, bool) or not isinstance(got, (int, float)):
        return False
    return math.isclose(got, want, rel_tol=1e-12, abs_tol=0.0)


def check_catalog(router, registry, errors):
    """LiteLLM reports for each deployment the prices, limits and capabilities the modelreg API
    gives for the model: its Router's model info, and the deployment's own model_info."""
    reported = {}
    for model in MODELS:
        uri = model["resource_uri"]
        ours = registry[uri]
        try:
            info = router.get_router_model_info(deployment=None, received_model_name=model["name"], id=uri)
        except Exception as e:  # noqa: BLE001 (a model LiteLLM cannot price is a finding)
            errors.append(f"{uri}: LiteLLM's router has no model info: {type(e).__name__}: {e}")
            continue
        deployment_info = router.get_deployment(model_id=uri).model_info
        for field, key in PRICES_AND_LIMITS:
            want = ours.get(field)
            if want is None and field.startswith("cache_"):
                # modelreg has none; LiteLLM may take one from its own map (or none).
                continue
            got = info.get(key)
            if not same_number(got, want):
                errors.append(f"{uri}: LiteLLM's router reports {key} {got!r}, modelreg {field} {want!r}")
            if want is not None and not same_number(deployment_info.get(key), want):
                errors.append(
                    f"{uri}: the deployment's model_info.{key} is {deployment_info.get(key)!r}, want {want!r}"
                )
        have = set(ours.get("capabilities") or [])
        for name in CAPABILITIES:
            got = bool(info.get(f"supports_{name}"))
            if got != (name in have):
                errors.append(
                    f"{uri}: LiteLLM's router reports supports_{name} {got}, "
                    f"modelreg capabilities {sorted(have)}"
                )
        reported[uri] = {key: info.get(key) for _, key in PRICES_AND_LIMITS}
    return reported


def check_cost(uri, response, ours, errors):
    """A request LiteLLM routed to the deployment costs what modelreg's prices say."""
    usage = response.usage
    got = response._hidden_params.get("response_cost")
    prices = ours["input_cost_per_token"], ours["output_cost_per_token"]
    if None in prices:
        errors.append(f"{uri}: modelreg has no prices for it; every model here must have some")
        return got
    want = usage.prompt_tokens * prices[0] + usage.completion_tokens * prices[1]
    if not same_number(got, want):
        errors.append(
            f"{uri}: LiteLLM costed a request of {usage.prompt_tokens}+{usage.completion_tokens} tokens at "
            f"{got!r}, modelreg's prices say {want!r}"
        )
    return got


def check_router(model_list, registry, errors):
    """LiteLLM's Router takes every deployment, tag routing finds them by their tags, and it
    prices each one as modelreg does."""
    # Importing litellm must not need the network: the cost map is the packaged one.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: E402  (slow, and only needed here)

    # Credentials are os.environ/ references; give each a dummy value, as a proxy host would.
    for entry in model_list:
        for value in (entry.get("litellm_params") or {}).values():
            if isinstance(value, str) and value.startswith("os.environ/"):
                os.environ.setdefault(value.removeprefix("os.environ/"), "dummy-value")

    # As the proxy builds it: a deployment LiteLLM cannot take is dropped with a log line.
    router = litellm.Router(
        model_list=model_list, enable_tag_filtering=True, ignore_invalid_deployments=True
    )
    deployed = router.get_model_list() or []
    if len(deployed) != len(model_list):
        got = sorted(str(d.get("model_info", {}).get("id")) for d in deployed)
        errors.append(f"the router holds {len(deployed)} of {len(model_list)} deployments: {got}")
    for model in MODELS:
        uri = model["resource_uri"]
        deployment = router.get_deployment(model_id=uri)
        if deployment is None:
            errors.append(f"{uri}: not in LiteLLM's router")
            continue
        if deployment.model_name != model["name"]:
            errors.append(f"{uri}: the router's model_name is {deployment.model_name!r}")
        api_version = deployment.litellm_params.api_version
        if api_version != model.get("api_version") or not isinstance(api_version, (str, type(None))):
            errors.append(f"{uri}: the router's api_version is {api_version!r}")
        if deployment.litellm_params.tags != model["tags"]:
            errors.append(f"{uri}: the router's tags are {deployment.litellm_params.tags!r}")
    reported = check_catalog(router, registry, errors)

    # Tag routing, end to end and offline (mock_response): a request tagged with a model's
    # tag is sent to that deployment, not to the group's default one.
    # Tag filtering runs on LiteLLM's async path, the one its proxy takes.
    async def route(model, tag):
        try:
            res = await router.acompletion(
                model=model,
                messages=[{"role": "user", "content": "hi, what does this cost?"}],
                mock_response="it costs what modelreg says",
                metadata={"tags": [tag]},
            )
            return res._hidden_params.get("model_id"), res
        except Exception as e:  # noqa: BLE001 (report any failure of LiteLLM as a finding)
            return f"{type(e).__name__}: {e}", None

    async def route_each():
        for model in MODELS:
            uri, tag = model["resource_uri"], model["tags"][0]
            # A group of two would pick the right one half the time by chance.
            for _ in range(5):
                got, res = await route(model["name"], tag)
                if got != uri:
                    errors.append(f"{uri}: a request for {model['name']!r} tagged {tag!r} went to {got!r}")
                    break
            else:
                if uri in reported:
                    reported[uri]["request_cost"] = check_cost(uri, res, registry[uri], errors)

    asyncio.run(route_each())
    return reported


def check(path, base, token, project):
    import yaml

    with open(path, encoding="utf-8") as f:
        try:
            config = yaml.safe_load(f)
        except yaml.YAMLError as e:
            fail([f"PyYAML cannot read the export: {e}"])
    model_list = config.get("model_list") or []
    errors = []
    for entry in model_list:
        check_types(entry, errors)
    by_id = {e.get("model_info", {}).get("id"): e for e in model_list}
    check_values(by_id, errors)
    # What the modelreg API says of each model: the values LiteLLM must report.
    registry = {
        m["resource_uri"]: api(base, token, project, f"/assets/models/{m['resource_uri']}")[1] for m in MODELS
    }
    reported = check_router(model_list, registry, errors)
    if errors:
        fail(errors)
    for uri, values in reported.items():
        provenance = registry[uri]["catalog"]
        overrides = sorted(f for f, p in provenance["fields"].items() if p == "override")
        shown = ", ".join(f"{k} {v}" for k, v in values.items())
        print(
            f"litellm_check: {uri} (catalog {provenance['key']}, overrides {overrides or 'none'}): "
            f"LiteLLM reports {shown}"
        )
    print(
        f"litellm_check: PyYAML {yaml.__version__} reads all {len(model_list)} deployments as "
        f"written; LiteLLM's router holds and routes every one, and prices and limits each as modelreg does"
    )


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["create", base, token, project]:
            create(base, token, project)
        case ["check", path, base, token, project]:
            check(path, base, token, project)
        case _:
            sys.exit(__doc__)
