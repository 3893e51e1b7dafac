#!/usr/bin/env bash
# Regenerates src/trainer/requirements.txt (the trainer's Python packages besides torch, pinned with
# sha256 hashes) from src/trainer/requirements.in. Needs PyPI and a python3 with pip >= 22.2.
#
#   bash scripts/lock-python.sh            # writes src/trainer/requirements.txt
#   bash scripts/lock-python.sh test       # writes src/trainer/requirements-test.txt (the tests' oracles too)
#
# How: for each Python version in PAL_LOCK_PYTHONS, pip's own resolver picks the versions
# (`pip install --dry-run --report` for a manylinux x86_64 target, wheels only), so the pins are what
# pip would install there; where Python versions need different releases (numpy 2.3+ dropped
# 3.10) the lines get python_version markers. Lines of requirements.in with a marker are taken
# as written (pip evaluates markers for the machine it runs on, so it cannot find e.g. Windows-only
# dependencies). The hashes are PyPI's own (its JSON simple index, what pip checks downloads
# against) for every wheel of each pinned release that fits a covered Python and platform; then
# every (Python, platform) pair is checked to have an installable wheel for every line that applies
# to it. PAL_LOCK_INDEX_URL picks another index (default https://pypi.org/simple); local pip
# configuration (find-links, extra indexes, constraints) is ignored so the lock is PyPI's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
export PAL_LOCK_PYTHONS=${PAL_LOCK_PYTHONS:-3.10 3.11 3.12 3.13 3.14}
export PAL_LOCK_INDEX_URL=${PAL_LOCK_INDEX_URL:-https://pypi.org/simple}

export PAL_LOCK_NAME=${1:-}
exec env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT -u PIP_REQUIRE_VIRTUALENV \
  PIP_CONFIG_FILE=/dev/null "$python" - "src/trainer/requirements${1:+-$1}.in" "src/trainer/requirements${1:+-$1}.txt" <<'PY'
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

from pip._vendor.packaging import tags
from pip._vendor.packaging.markers import Marker
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename

src, dst = sys.argv[1], sys.argv[2]
# Not locked, nor what only it pulls in: installed before the lock, from requirements-torch.txt.
NOT_LOCKED = {"torch"}
pythons = os.environ["PAL_LOCK_PYTHONS"].split()
index = os.environ["PAL_LOCK_INDEX_URL"].rstrip("/")

# The covered platforms: (name, marker environment, platform tags a wheel may carry there). Linux
# means glibc 2.28 or newer (Debian 10+, Ubuntu 18.10+, RHEL 8+): pins are resolved and coverage is
# checked for that, while the hashes also take the same release's wheels for newer glibc, which pip
# prefers on newer systems.
GLIBC_FLOOR, GLIBC_CEILING = 28, 45

def manylinux(arch, newest=GLIBC_FLOOR):
    return [f"manylinux_2_{m}_{arch}" for m in range(newest, 16, -1)] + [f"manylinux2014_{arch}"] + (
        [f"manylinux_2_12_{arch}", f"manylinux2010_{arch}", f"manylinux_2_5_{arch}", f"manylinux1_{arch}"] if arch == "x86_64" else [])

PLATFORMS = [
    ("manylinux x86_64", {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": "x86_64"}, manylinux("x86_64")),
    ("manylinux aarch64", {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": "aarch64"}, manylinux("aarch64")),
    ("macOS arm64", {"platform_system": "Darwin", "sys_platform": "darwin", "platform_machine": "arm64"}, list(tags.mac_platforms((15, 0), "arm64"))),
    ("macOS x86_64", {"platform_system": "Darwin", "sys_platform": "darwin", "platform_machine": "x86_64"}, list(tags.mac_platforms((15, 0), "x86_64"))),
    ("Windows amd64", {"platform_system": "Windows", "sys_platform": "win32", "platform_machine": "AMD64"}, ["win_amd64"]),
]


def supported(py, platforms):
    """The tags CPython `py` (no free-threading) accepts on one of these platform tags, best first."""
    v = tuple(int(x) for x in py.split("."))
    return set(tags.cpython_tags(v, platforms=platforms)) | set(tags.compatible_tags(v, f"cp{v[0]}{v[1]}", platforms))


def env_for(py, platform_env):
    env = {"python_version": py, "python_full_version": py + ".0", "implementation_name": "cpython",
           "platform_python_implementation": "CPython", "os_name": "nt" if platform_env["sys_platform"] == "win32" else "posix",
           "extra": ""}
    env.update(platform_env)
    return env


# 1. requirements.in: plain pins get resolved; lines with a marker are taken as written.
top, fixed = [], []
for raw in open(src):
    line = raw.split(" #", 1)[0].strip()
    if not line or line.startswith("#"):
        continue
    req = Requirement(line)
    spec = list(req.specifier)
    if len(spec) != 1 or spec[0].operator != "==":
        sys.exit(f"lock-python: {line!r}: pin an exact version (name==version)")
    (fixed if req.marker else top).append(req)

# 2. Resolve per Python version with pip's resolver.
resolved = {}  # py -> {name: version}
seen_hash = {}  # (name, version, filename) -> sha256 from the report
for py in pythons:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", report,
               "--only-binary", ":all:", "--python-version", py, "--target", os.path.join(tmp, "t"),
               "--index-url", index]
        for p in manylinux("x86_64"):
            cmd += ["--platform", p]
        cmd += [str(r) for r in top]
        print(f"lock-python: resolving for Python {py}", file=sys.stderr)
        subprocess.run(cmd, check=True)
        pins, requires = {}, {}
        for item in json.load(open(report))["install"]:
            name, version = canonicalize_name(item["metadata"]["name"]), item["metadata"]["version"]
            pins[name] = version
            requires[name] = item["metadata"].get("requires_dist", [])
            url = item["download_info"]["url"]
            sha = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
            seen_hash[(name, version, url.rsplit("/", 1)[-1])] = sha
        # Keep what the requirements need without going through torch: torch is installed first
        # (requirements-torch.txt, the platform's own build: CPU, CUDA or ROCm), and what only it
        # needs comes with it (on manylinux x86_64 PyPI's torch would bring GBs of nvidia-* wheels).
        env = env_for(py, PLATFORMS[0][1])
        needed, todo = set(), [(canonicalize_name(r.name), set(r.extras)) for r in top]
        while todo:
            name, extras = todo.pop()
            if name in NOT_LOCKED or (name, frozenset(extras)) in needed:
                continue
            needed.add((name, frozenset(extras)))
            for dep in requires.get(name, []):
                dep = Requirement(dep)
                if not dep.marker or any(dep.marker.evaluate({**env, "extra": e}) for e in extras | {""}):
                    todo.append((canonicalize_name(dep.name), set(dep.extras)))
        kept = {name for name, _ in needed}
        resolved[py] = {name: v for name, v in pins.items() if name in kept}

# 3. Merge into lines: one per (name, version), with a python_version marker where versions differ.
def py_key(p):
    return tuple(int(x) for x in p.split("."))

lines = []  # (name, version, marker or None)
names = sorted({n for pins in resolved.values() for n in pins})
for name in names:
    groups = []  # [version, [pythons]]
    for py in pythons:
        v = resolved[py].get(name)
        if groups and groups[-1][0] == v:
            groups[-1][1].append(py)
        else:
            groups.append([v, [py]])
    if len(groups) == 1 and groups[0][0] is not None:
        lines.append((name, groups[0][0], None))
        continue
    for i, (v, pys) in enumerate(groups):
        if v is None:
            continue
        lo = None if i == 0 else pys[0]
        hi = None if i == len(groups) - 1 else groups[i + 1][1][0]
        parts = ([f'python_version >= "{lo}"'] if lo else []) + ([f'python_version < "{hi}"'] if hi else [])
        lines.append((name, v, " and ".join(parts)))
for req in fixed:
    lines.append((canonicalize_name(req.name), list(req.specifier)[0].version, str(req.marker)))
lines.sort(key=lambda l: (l[0], py_key(l[1]) if re.fullmatch(r"[\d.]+", l[1]) else (0,)))

# 4. Hashes: PyPI's, for every wheel of the pinned release that fits a covered Python and platform.
all_tags = set()
for py in pythons:
    for _, _, plats in PLATFORMS:
        all_tags |= supported(py, plats)
    all_tags |= supported(py, manylinux("x86_64", GLIBC_CEILING) + manylinux("aarch64", GLIBC_CEILING))

index_cache = {}
def files_of(name):
    if name not in index_cache:
        request = urllib.request.Request(f"{index}/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            index_cache[name] = json.load(r)["files"]
    return index_cache[name]

hashed = []  # (name, version, marker, [(filename, sha256, tagset)])
for name, version, marker in lines:
    chosen = []
    for f in files_of(name):
        fn = f["filename"]
        if not fn.endswith(".whl") or f.get("yanked"):
            continue
        try:
            wname, wver, _, wtags = parse_wheel_filename(fn)
        except Exception:  # noqa: BLE001 - a file name pip itself would not use
            continue
        if canonicalize_name(wname) != name or str(wver) != version:
            continue
        if wtags & all_tags:
            chosen.append((fn, f["hashes"]["sha256"], wtags))
    if not chosen:
        sys.exit(f"lock-python: no wheel of {name}=={version} fits a covered platform")
    for (n, v, fn), sha in seen_hash.items():
        if n == name and v == version and sha and sha not in {c[1] for c in chosen}:
            sys.exit(f"lock-python: pip chose {fn} ({sha}), which PyPI's index does not list for {name}=={version}")
    hashed.append((name, version, marker, sorted(chosen)))

# 5. Every covered (Python, platform) pair must find an installable wheel for every line that applies.
gaps = []
for py in pythons:
    for plat_name, plat_env, plats in PLATFORMS:
        ok_tags = supported(py, plats)
        env = env_for(py, plat_env)
        for name, version, marker, chosen in hashed:
            if marker and not Marker(marker).evaluate(env):
                continue
            if not any(t & ok_tags for _, _, t in chosen):
                gaps.append(f"{name}=={version} on CPython {py} {plat_name}")
        # and each name must have exactly one line that applies
        for name in {h[0] for h in hashed}:
            n = sum(1 for h in hashed if h[0] == name and (not h[2] or Marker(h[2]).evaluate(env)))
            if n > 1:
                gaps.append(f"{name}: {n} lines apply on CPython {py} {plat_name}")
if gaps:
    sys.exit("lock-python: not covered:\n  " + "\n  ".join(gaps))

# 6. Write the lock.
out = [
    "# The trainer's Python packages besides torch, pinned with sha256 hashes. Generated by",
    f"# `bash scripts/lock-python.sh{' ' + os.environ['PAL_LOCK_NAME'] if os.environ.get('PAL_LOCK_NAME') else ''}` from {os.path.basename(src)}: edit that, then regenerate; do not edit by hand.",
    "# scripts/setup-python.sh installs it with `pip install --require-hashes -r` into the trainer's",
    "# virtual environment, after torch (requirements-torch.txt, no hash: see there).",
    "#",
    "# Covered: CPython " + ", ".join(pythons) + " (not free-threaded) on",
    "#   " + ", ".join(p[0] for p in PLATFORMS) + ";",
    f"# Linux with glibc 2.{GLIBC_FLOOR} or newer. Each line lists the hashes of every wheel of that release",
    "# that fits one of these, and every (Python, platform) pair was checked to have one. Elsewhere",
    "# (musllinux, other CPUs, PyPy) pip stops with a hash error: add the platform to PLATFORMS in",
    "# scripts/lock-python.sh and regenerate. The hashes are those the index lists (" + index + ").",
]
for name, version, marker, chosen in hashed:
    out.append("")
    out.append(f"{name}=={version}" + (f" ; {marker}" if marker else "") + " \\")
    shas = sorted({c[1] for c in chosen})
    for i, sha in enumerate(shas):
        out.append(f"    --hash=sha256:{sha}" + (" \\" if i < len(shas) - 1 else ""))
with open(dst, "w") as fh:
    fh.write("\n".join(out) + "\n")
print(f"lock-python: wrote {dst}: {len(hashed)} lines, {sum(len(set(c[1] for c in h[3])) for h in hashed)} hashes", file=sys.stderr)
for name, version, marker, _ in hashed:
    print(f"  {name}=={version}" + (f" ; {marker}" if marker else ""), file=sys.stderr)
PY
