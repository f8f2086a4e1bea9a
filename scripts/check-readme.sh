#!/usr/bin/env bash
# Runs every ```bash block of README.md after the first (the set-up commands, which are what CI runs
# anyway), in order, as one script, in a scratch folder that looks like a checkout: build/, configs/
# and scripts/ link to this repository, ../shared links to ../shared when it exists. A block that
# mentions ../shared/data is skipped (with a message) when the data is absent, as on a user's machine.
# Fails on the first command that fails. Usage: scripts/check-readme.sh [BUILD_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
[ -x "$build/bin/conductor" ] || { echo "check-readme: $build/bin/conductor is missing: build first" >&2; exit 1; }
scratch="$build/readme-check"
rm -rf "$scratch"
mkdir -p "$scratch/work"
ln -s "$build" "$scratch/work/build"
ln -s "$repo/configs" "$scratch/work/configs"
ln -s "$repo/scripts" "$scratch/work/scripts"
[ -d "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$scratch/shared"
have_data=0
[ -d "$scratch/shared/data" ] && have_data=1

script="$scratch/readme.sh"
/usr/bin/python3 - "$repo/README.md" "$script" "$have_data" <<'PY'
import re, sys
readme, out, have_data = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
blocks = re.findall(r"```bash\n(.*?)```", open(readme).read(), re.S)
if len(blocks) < 2:
    sys.exit("check-readme: README.md has no bash blocks after the set-up commands")
with open(out, "w") as f:
    f.write("set -euo pipefail\nset -m\n")  # set -m: `kill %1` works in a script
    for i, b in enumerate(blocks[1:], start=2):
        if "../shared/data" in b and not have_data:
            f.write(f"echo '== block {i}: skipped (../shared/data is absent)'\n")
            continue
        f.write(f"echo '== block {i}'\n{b}\n")
    f.write("wait\n")
PY
cd "$scratch/work"
bash -x "$script"
echo "check-readme: every README block ran"
