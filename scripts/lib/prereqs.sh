# Installs what the tests, the benchmarks and the main job need, when missing. Sourced by scripts/*.
# Debian packages: the peers we compare against (tini, which also ships tini-static; dumb-init;
# supervisor), debootstrap for the base image, docker-compose for the cluster, curl/jq/procps/
# libcap2-bin/iproute2 for the tests, openssh-client (ssh, ssh-keygen, ssh-keyscan) for the access tests. PyPI: pyspark (Spark 4, needs Java 17)
# and notebook (Jupyter). rustup: clippy, rustfmt and the musl target (static binary for images).

apt_missing() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  printf '%s\n' "${missing[@]}"
}

install_prereqs() {
  local pkgs=(tini dumb-init supervisor debootstrap docker-compose curl jq procps libcap2-bin iproute2 util-linux openjdk-17-jre-headless openssh-client)
  mapfile -t need < <(apt_missing "${pkgs[@]}" | sed '/^$/d')
  if [ "${#need[@]}" -gt 0 ]; then
    echo "== apt-get install ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if ! python3 -c 'import pyspark, notebook' 2>/dev/null; then
    echo "== pip install pyspark notebook"
    python3 -m pip install -q 'pyspark>=4.0,<5' notebook
  fi
  rustup component add clippy rustfmt >/dev/null 2>&1 || true
  rustup target add x86_64-unknown-linux-musl >/dev/null 2>&1 || true
}
