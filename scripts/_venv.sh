# shellcheck shell=bash
# Sourced by scripts/serve and scripts/test: keep the project's .venv installed.
#
#   ensure_venv ROOT EXTRA   # EXTRA: "" (the server) or "test" (the server plus test tools)
#
# Creates ROOT/.venv with python3 when missing or broken and runs `pip install -e`, then
# `pip install --no-deps` of _VENV_NODEPS, only when pyproject.toml or _VENV_NODEPS changed
# since the last successful install (a stamp file inside .venv holds the sha256 of
# pyproject.toml, the _VENV_NODEPS list and the checkout's path). An install with the
# "test" extra also satisfies a plain one.
#
# With the "test" extra it also installs the Node packages of package-lock.json (the MCP
# reference server the MCP client tests run) into ROOT/.venv/node with `npm ci`, again only
# when package-lock.json changed (stamp .venv/node/.palaver-installed). Without npm this is
# skipped with a note, and the tests that need those packages are skipped.

# Installed with --no-deps after the project because their declared dependencies are not
# wanted: silero-vad declares torch (~5 GiB with CUDA), but palaver only runs the
# silero_vad.onnx file its wheel carries, on onnxruntime (a project dependency).
_VENV_NODEPS=("silero-vad>=5,<7")

_venv_say() { echo "scripts/${0##*/}: $*" >&2; }

ensure_venv() {
  _ensure_python_venv "$@" || return 1
  if [[ $2 == test ]]; then
    ensure_node_packages "$1" || return 1
  fi
  return 0
}

# ensure_node_packages ROOT: `npm ci` of ROOT/package-lock.json into ROOT/.venv/node.
ensure_node_packages() {
  local root=$1 dir="$1/.venv/node"
  [[ -f $root/package-lock.json ]] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    _venv_say "npm not found: skipping the Node test packages (Debian: apt-get install nodejs npm)"
    return 0
  fi
  local key
  key="$(cat "$root/package.json" "$root/package-lock.json" | sha256sum | cut -d' ' -f1)"
  if [[ -f $dir/.palaver-installed && "$(cat "$dir/.palaver-installed")" == "$key" && -d $dir/node_modules ]]; then
    return 0
  fi
  _venv_say "installing the Node test packages into $dir (npm ci)"
  mkdir -p "$dir"
  cp "$root/package.json" "$root/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || {
    _venv_say "npm ci failed in $dir"
    return 1
  }
  echo "$key" >"$dir/.palaver-installed"
}

_ensure_python_venv() {
  local root=$1 extra=$2 venv="$1/.venv"
  if ! command -v python3 >/dev/null 2>&1; then
    _venv_say "python3 not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)"
    return 1
  fi
  if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
    if ! python3 -c 'import sys; raise SystemExit(sys.version_info < (3, 11))'; then
      _venv_say "python3 is $(python3 --version 2>&1); palaver needs Python 3.11 or newer"
      return 1
    fi
    _venv_say "creating $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" || { _venv_say "python3 -m venv failed (Debian: apt-get install python3-venv)"; return 1; }
  fi

  local key
  key="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1) ${_VENV_NODEPS[*]} $root"
  local wanted=("$venv/.palaver-installed-test")
  [[ -z $extra ]] && wanted+=("$venv/.palaver-installed-base")
  local stamp
  for stamp in "${wanted[@]}"; do
    if [[ -f $stamp && "$(cat "$stamp")" == "$key" ]] \
      && "$venv/bin/python" -c 'import importlib.metadata as m; m.version("palaver"); m.version("silero-vad")' \
        2>/dev/null; then
      return 0
    fi
  done

  local target=$root
  [[ -n $extra ]] && target="${root}[$extra]"
  _venv_say "installing $target into $venv (first run, or pyproject.toml or _VENV_NODEPS changed)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$target" || {
    _venv_say "pip install -e '$target' failed"
    return 1
  }
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${_VENV_NODEPS[@]}" || {
    _venv_say "pip install --no-deps ${_VENV_NODEPS[*]} failed"
    return 1
  }
  echo "$key" >"$venv/.palaver-installed-${extra:-base}"
}
