# Shared by the scripts in this folder (sourced, not run): environment defaults and a timed `step`.

# npm's binaryen (package.json) gives Trunk its wasm-opt; Debian's is too old (see index.html).
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/binaryen/bin:$HOME/.cargo/bin:$PATH"
# One warm target dir for every build of this crate; a cold burn build takes ~18 minutes.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/glassbox/target}"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

# Runs a command as one named step and prints how long it took; stops the script if it fails.
step() {
  CURRENT_STEP="$1"
  shift
  local started=$SECONDS
  echo "==> $CURRENT_STEP"
  "$@"
  echo "<== $CURRENT_STEP: $((SECONDS - started)) s"
  CURRENT_STEP=""
}
trap 'status=$?; [ "$status" -eq 0 ] || echo "!!! ${CURRENT_STEP:-$(basename "$0")} failed (exit $status)" >&2' EXIT

# Runs a command as root: directly when we are root (as in CI), else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
