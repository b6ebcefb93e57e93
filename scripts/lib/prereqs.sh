# The one install step of the README's two commands: `scripts/cluster` (install_prereqs cluster)
# and `scripts/test` (install_prereqs test) both source this file. It installs only what is
# missing, and prints each thing it installs with the reason. Debian packages need root (apt-get);
# PyPI packages go through the host's pip; rustup components are added when rustup is there.
#
# PREREQS_APT_LIST (tests only): a file that replaces the package table below, same format.

# package|why|who needs it (cluster, test)
PREREQS_APT=(
  "debootstrap|builds the base image sparkvisor-base:bookworm (docker/build-base-image.sh)|cluster test"
  "gcc|cargo links with cc, and the cc crate assembles psm (tera's pest) for the musl build; rustup brings no C compiler|cluster test"
  "libc6-dev|the C runtime files and headers cc links the glibc build against|cluster test"
  "musl-tools|musl-gcc: ring (rustls's crypto, the probes' HTTPS) compiles C for the static musl build|cluster test"
  "curl|the tests talk to Spark's web UI and the status socket|test"
  "jq|the tests read JSON answers|test"
  "procps|ps/pgrep for the tests|test"
  "libcap2-bin|capsh/getpcaps: the privilege tests check capability sets|test"
  "iproute2|the network tests|test"
  "util-linux|unshare: tests run the agent as PID 1 of a fresh PID namespace|test"
  "tini|peer the tini-mode tests and benchmarks compare against (also ships tini-static)|test"
  "dumb-init|peer the benchmarks compare against|test"
  "supervisor|supervisord, peer the benchmarks compare against|test"
  "openjdk-17-jre-headless|Java 17 runs the real Spark master and workers in the tests|test"
  "openssh-client|ssh, ssh-keygen, ssh-keyscan: the access tests log in to nodes over ssh|test"
)

# Prints the Debian packages `purpose` needs that are not installed, one per line, as
# "package|why".
prereqs_missing_apt() {
  local purpose="$1" entry name why who
  local -a table=("${PREREQS_APT[@]}")
  if [ -n "${PREREQS_APT_LIST:-}" ]; then
    mapfile -t table < "$PREREQS_APT_LIST"
  fi
  for entry in "${table[@]}"; do
    IFS='|' read -r name why who <<< "$entry"
    case " $who " in *" $purpose "*) ;; *) continue ;; esac
    dpkg -s "$name" >/dev/null 2>&1 || printf '%s|%s\n' "$name" "$why"
  done
}

# install_prereqs [cluster|test]: installs what the command needs and is missing (default: test).
install_prereqs() {
  local purpose="${1:-test}" line name why
  local -a need=()
  echo "== prerequisites for scripts/$purpose"
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    name="${line%%|*}"; why="${line#*|}"
    echo "   installing $name: $why"
    need+=("$name")
  done < <(prereqs_missing_apt "$purpose")
  # pip: only when the python3 on PATH has none (e.g. a pyenv Python brings its own).
  if ! python3 -m pip --version >/dev/null 2>&1 && ! dpkg -s python3-pip >/dev/null 2>&1; then
    echo "   installing python3-pip: builds the pyspark/notebook wheelhouse the image installs from (docker/build-image.sh)"
    need+=(python3-pip)
  fi
  # Compose: only when the engine has no `docker compose` (v2) plugin.
  if command -v docker >/dev/null && ! docker compose version >/dev/null 2>&1 \
     && ! command -v docker-compose >/dev/null; then
    echo "   installing docker-compose: starts the cluster (docker/compose.yaml); this Docker has no compose v2"
    need+=(docker-compose)
  fi
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "prereqs: missing ${need[*]}; run as root, or: sudo apt-get install ${need[*]}" >&2
      return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
    echo "   installed ${need[*]}"
  else
    echo "   Debian packages: all present"
  fi
  if ! command -v docker >/dev/null; then
    echo "   docker not found: scripts/cluster and the Docker tests need a Docker engine (https://docs.docker.com/engine/install/)"
  fi
  # Debian's own python3 is "externally managed" (PEP 668): pip refuses to install into it unless
  # told to. A test machine's python3 is there for the tests; older pips ignore the variable.
  # The host's Spark is the image's release (docker/Dockerfile's PYSPARK_VERSION), so that the
  # host tests and the Docker tests exercise the same Spark. Without the Dockerfile (only scripts/
  # at hand, as in the prerequisites test) any 4.x will do, and `set -e` callers go on.
  local pyspark_version pyspark_req='pyspark>=4.0,<5'
  pyspark_version="$(sed -n 's/^ARG PYSPARK_VERSION=//p' \
    "$(dirname "${BASH_SOURCE[0]}")/../../docker/Dockerfile" 2>/dev/null || true)"
  [ -n "$pyspark_version" ] && pyspark_req="pyspark==$pyspark_version"
  if [ "$purpose" = test ] && ! python3 -c "import sys, pyspark, notebook
sys.exit('$pyspark_version' not in ('', pyspark.__version__))" 2>/dev/null; then
    echo "   installing $pyspark_req, notebook (pip): the real Spark 4 (the image's release) and Jupyter the tests start"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q "$pyspark_req" notebook
  fi
  if [ "$purpose" = test ] && ! python3 -c 'import kubernetes_validate.utils as u
assert "1.34" in {u.major_minor(v) for v in u.all_versions()}' 2>/dev/null; then
    echo "   installing kubernetes-validate (pip): the Kubernetes 1.30-1.34 API schemas tests/platforms/k8s_manifests.rs checks the manifests against"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q 'kubernetes-validate>=1.34.1'
  fi
  if [ "$purpose" = test ] && ! python3 -c 'import prometheus_client' 2>/dev/null; then
    echo "   installing prometheus_client (pip): its parser checks Spark's Prometheus output in the tests"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q prometheus_client
  fi
  if [ "$purpose" = test ]; then
    install_compose_v2_for_tests
  fi
  if command -v rustup >/dev/null; then
    if [ "$purpose" = test ]; then
      rustup component add clippy rustfmt >/dev/null 2>&1 || true
    fi
    if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
      echo "   adding rust target x86_64-unknown-linux-musl: the static agent binary for the image"
      rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || true
    fi
  fi
}

# Compose v2 for tests/docker/multihost.rs, beside the machine's own Compose: Debian's docker-compose
# 2.x package (from the next Debian release, fetched with apt from the mirror this machine already
# uses, into a private apt state), unpacked as a CLI plugin into a Docker config directory under
# target/. Only a command given DOCKER_CONFIG=target/compose-v2 sees it, so the other tests keep
# the Compose they find (v1 here). Nothing is installed system-wide.
install_compose_v2_for_tests() {
  local dir="${COMPOSE_V2_DIR:-target/compose-v2}" plugin mirror work deb
  plugin="$dir/cli-plugins/docker-compose"
  [ -x "$plugin" ] && return 0
  command -v docker >/dev/null && command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 0
  mirror="$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)"
  [ -n "$mirror" ] || mirror="$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null)"
  if [ -z "$mirror" ]; then
    echo "   Compose v2 for the tests: no Debian mirror configured, not installed"
    return 0
  fi
  echo "   installing Compose v2 (Debian trixie's docker-compose) into $dir: tests/docker/multihost.rs deploys with v1 and v2"
  work="$(mktemp -d)"
  mkdir -p "$work/lists/partial" "$work/archives/partial" "$work/parts"
  printf 'Types: deb\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$mirror" > "$work/parts/trixie.sources"
  local -a apt=(apt-get -qq -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::archives=$work/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$work/parts" -o "APT::Sandbox::User=root")
  if "${apt[@]}" update && (cd "$work" && "${apt[@]}" download docker-compose) \
     && deb="$(ls "$work"/docker-compose_2.*_*.deb 2>/dev/null | head -n1)" && [ -n "$deb" ] \
     && dpkg-deb -x "$deb" "$work/root"; then
    mkdir -p "$dir/cli-plugins"
    install -m 0755 "$work/root/usr/libexec/docker/cli-plugins/docker-compose" "$plugin"
    echo "   installed $("$plugin" version 2>/dev/null)"
  else
    echo "   Compose v2 for the tests: download failed (tests/docker/multihost.rs fails under CI=true)"
  fi
  rm -rf "$work"
}
