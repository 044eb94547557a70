#!/usr/bin/env bash
# Reproduces the bundled model catalog (docs/catalog.md) from LiteLLM's wheel on PyPI: downloads
# the wheel into target/, takes its cost map out, checks it against the wheel's RECORD, and writes
# beside this script:
#   litellm-model-prices.json.gz   the cost map, gzip -n -9 (no name or time: the same bytes each run)
#   SOURCE                         name, version, date (the wheel's PyPI upload day), path, sha256
#   NOTICE                         LiteLLM's licence, from the same wheel
# Needs python3 with pip, and the network to PyPI; nothing at build or run time does.
#
#   bash crates/modelreg-core/catalog/update.sh            # the version SOURCE names (reproduce)
#   bash crates/modelreg-core/catalog/update.sh 1.108.14   # another version (refresh)
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"

VERSION="${1:-$(sed -n 's/^version=//p' "$HERE/SOURCE")}"
[[ "$VERSION" =~ ^[0-9]+(\.[0-9]+)*$ ]] || { echo "update.sh: not a version: '$VERSION'" >&2; exit 2; }
INNER="litellm/model_prices_and_context_window_backup.json"
WORK="$ROOT/target/catalog-snapshot/$VERSION"
rm -rf "$WORK" && mkdir -p "$WORK"

# One platform, whatever the host: the cost map is the same file in every wheel of a release, and
# naming one keeps SOURCE's `wheel` line the same on every machine. Pure wheels (py3-none-any, the
# older releases) match these tags too.
python3 -m pip download -q --no-deps --only-binary=:all: --no-cache-dir \
  --platform manylinux_2_28_x86_64 --implementation cp --python-version 3.12 \
  -d "$WORK" "litellm==$VERSION"
WHEEL="$(cd "$WORK" && ls litellm-"$VERSION"-*.whl)"

python3 - "$WORK/$WHEEL" "$INNER" "$WORK" <<'PY'
import base64, hashlib, sys, zipfile
wheel, inner, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    data = z.read(inner)
    record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
    licences = [n for n in z.namelist() if ".dist-info/" in n and "LICENSE" in n.rsplit("/", 1)[-1].upper()]
    if not licences:
        sys.exit("update.sh: no licence file in the wheel")
    licence = z.read(licences[0])
    expected = next(
        line.split(",")[1] for line in z.read(record).decode().splitlines() if line.split(",")[0] == inner
    )
digest = "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
if digest != expected:
    sys.exit(f"update.sh: {inner} does not match the wheel's RECORD ({digest} != {expected})")
open(f"{out}/cost-map.json", "wb").write(data)
open(f"{out}/LICENSE", "wb").write(licence)
open(f"{out}/licence-path", "w").write(licences[0])
PY

# The day the wheel was uploaded: the snapshot's date. The release's own JSON first, the project's
# list of releases when a mirror does not serve it.
DATE="$(python3 - "$VERSION" "$WHEEL" <<'PY'
import json, sys, urllib.request
version, wheel = sys.argv[1:]
def files():
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/litellm/{version}/json", timeout=60) as r:
            return json.load(r)["urls"]
    except Exception:
        with urllib.request.urlopen("https://pypi.org/pypi/litellm/json", timeout=120) as r:
            return json.load(r)["releases"][version]
print(next(f["upload_time_iso_8601"] for f in files() if f["filename"] == wheel)[:10])
PY
)"
[[ "$DATE" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || { echo "update.sh: no upload date for $WHEEL" >&2; exit 1; }

SHA256="$(sha256sum "$WORK/cost-map.json" | cut -d' ' -f1)"
gzip -n -9 -c "$WORK/cost-map.json" >"$HERE/litellm-model-prices.json.gz"

cat >"$HERE/SOURCE" <<SRC
# The bundled cost map (docs/catalog.md). Written by update.sh; read by the catalog at build time.
name=litellm
version=$VERSION
date=$DATE
path=$INNER
wheel=$WHEEL
sha256=$SHA256
SRC

{
  echo "crates/modelreg-core/catalog/litellm-model-prices.json.gz is LiteLLM's model cost map,"
  echo "$INNER from the wheel $WHEEL"
  echo "(https://pypi.org/project/litellm/$VERSION/, uploaded $DATE; https://github.com/BerriAI/litellm),"
  echo "gzip-compressed and otherwise unchanged. The file is outside LiteLLM's enterprise/ directory, so the"
  echo "MIT licence below covers it. The licence, as $(cat "$WORK/licence-path") in that wheel:"
  echo
  cat "$WORK/LICENSE"
} >"$HERE/NOTICE"

echo "litellm $VERSION ($WHEEL, uploaded $DATE)"
echo "  $INNER: $(stat -c %s "$WORK/cost-map.json") bytes, sha256 $SHA256"
echo "  litellm-model-prices.json.gz: $(stat -c %s "$HERE/litellm-model-prices.json.gz") bytes, sha256 $(sha256sum "$HERE/litellm-model-prices.json.gz" | cut -d' ' -f1)"
