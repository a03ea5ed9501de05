#!/usr/bin/env bash
# Build the local control plane's binaries from Go modules into a cache outside the repo.
#
#   tests/cluster/build.sh            build what is missing, print the bin directory
#
# The cache lives in ${PRODREADY_CACHE:-$HOME/.cache/prodready}/<component>-<version>/ and
# is reused by every later run; nothing is downloaded but Go modules from the module proxy.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${PRODREADY_CACHE:-$HOME/.cache/prodready}
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
log() { printf '[cluster-build] %s\n' "$*" >&2; }

k8s_dir="$cache/kubernetes-$KUBERNETES_VERSION"
etcd_dir="$cache/etcd-$ETCD_VERSION"
kwok_dir="$cache/kwok-$KWOK_VERSION"
helm_dir="$cache/helm-$HELM_VERSION"
prometheus_dir="$cache/prometheus-$PROMETHEUS_VERSION"

build_kubernetes() {
  local bin="$k8s_dir/bin"
  if [[ -x $bin/kube-apiserver && -x $bin/kube-controller-manager && -x $bin/kube-scheduler && -x $bin/kubectl ]]; then
    return
  fi
  log "building Kubernetes $KUBERNETES_VERSION (first time only; ~20-30 min on 2 cores)"
  local src="$k8s_dir/src" minor staging
  mkdir -p "$src" "$bin"
  minor=${KUBERNETES_VERSION#v1.}
  minor=${minor%%.*}
  # k8s.io/kubernetes replaces its staging modules with local paths; a consumer must pin
  # each of them to the matching published v0.N.P instead.
  staging=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' \
    | xargs sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p')
  {
    echo "module prodready.local/kubernetes"
    echo
    echo "go 1.26.0"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    for module in $staging; do
      echo "replace $module => $module v0.${KUBERNETES_VERSION#v1.}"
    done
  } >"$src/go.mod"
  local version_flags="" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (
    cd "$src"
    go build -mod=mod -trimpath -ldflags "-s -w $version_flags" -o "$bin/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl
  )
}

build_etcd() {
  [[ -x $etcd_dir/bin/etcd ]] && return
  log "building etcd $ETCD_VERSION"
  local src="$etcd_dir/src"
  mkdir -p "$src" "$etcd_dir/bin"
  cat >"$src/go.mod" <<MOD
module prodready.local/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat >"$src/main.go" <<'GO'
// Command etcd starts etcd's server, exactly as etcd's own main package does.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  (cd "$src" && go mod tidy >/dev/null 2>&1 && go build -trimpath -ldflags "-s -w" -o "$etcd_dir/bin/etcd" .)
}

build_go_install() { # dir package version [build tags]
  local dir=$1 package=$2 version=$3 tags=${4:-} name
  name=$(basename "$package")
  [[ -x $dir/bin/$name ]] && return
  log "building $name $version"
  mkdir -p "$dir/bin"
  GOBIN="$dir/bin" go install -trimpath -tags "$tags" -ldflags "-s -w" "$package@$version"
}

kwok_stages() {
  # kwok runs no stages unless given some: take its own "fast" node and pod stages and the
  # lease heartbeat (so the node lifecycle controller keeps the node Ready) from its module.
  local out="$kwok_dir/stages.yaml" dir stage first=1
  [[ -s $out ]] && return
  dir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  : >"$out.tmp"
  for stage in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    ((first)) || echo "---" >>"$out.tmp"
    first=0
    cat "$dir/kustomize/stage/$stage.yaml" >>"$out.tmp"
  done
  mv "$out.tmp" "$out"
}

build_kstatus() {
  # Our own small Go program around sigs.k8s.io/cli-utils' kstatus (what Flux reads), so
  # tests check status conditions with the real library; keyed by its sources.
  local sum dir
  sum=$(cat "$here/kstatus/go.mod" "$here/kstatus/go.sum" "$here/kstatus/main.go" | sha256sum | cut -c1-12)
  dir="$cache/kstatus-$sum"
  kstatus_bin="$dir/bin/kstatus"
  [[ -x $kstatus_bin ]] && return
  log "building kstatus"
  mkdir -p "$dir/bin"
  (cd "$here/kstatus" && go build -trimpath -ldflags "-s -w" -o "$kstatus_bin" .)
}

build_kubernetes
build_etcd
build_kstatus
build_go_install "$kwok_dir" sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION"
kwok_stages
build_go_install "$helm_dir" helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
# promtool checks and unit-tests rule files; remove_all_sd leaves out Prometheus' service
# discovery plugins (the cloud SDKs): a third of the binary, most of the build time.
build_go_install "$prometheus_dir" github.com/prometheus/prometheus/cmd/promtool \
  "$PROMETHEUS_VERSION" remove_all_sd

# One directory of links, so callers need a single path.
links="$cache/bin-$KUBERNETES_VERSION-$ETCD_VERSION-$KWOK_VERSION-$HELM_VERSION"
mkdir -p "$links"
for b in "$k8s_dir"/bin/* "$etcd_dir/bin/etcd" "$kwok_dir/bin/kwok" "$kwok_dir/stages.yaml" \
  "$helm_dir/bin/helm" "$prometheus_dir/bin/promtool" "$kstatus_bin"; do
  ln -sfn "$b" "$links/$(basename "$b")"
done
echo "$links"
