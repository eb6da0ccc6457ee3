#!/usr/bin/env bash
# Executes a notebook headless with Debian's jupyter nbconvert (python3 kernel from
# python3-ipykernel); fails on any cell's error. The executed copy goes to a scratch folder.
set -euo pipefail
notebook="$1"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$out"  # the notebook's runs land in the temporary folder, not in the source tree
PYDEVD_DISABLE_FILE_VALIDATION=1 jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=600 \
  --output-dir "$out" --output executed "$notebook"
# Every code cell ran and none left an error.
/usr/bin/python3 - "$out/executed.ipynb" <<'PY'
import json, sys
nb = json.load(open(sys.argv[1]))
cells = [c for c in nb["cells"] if c["cell_type"] == "code"]
assert all(c.get("execution_count") for c in cells), "a cell did not run"
errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
assert not errors, errors
images = sum("image/png" in o.get("data", {}) for c in cells for o in c.get("outputs", []))
assert images >= 3, f"expected the curves, the confusion matrix and the picture, found {images} figures"
print(f"{len(cells)} cells ran, {images} figures")
PY
