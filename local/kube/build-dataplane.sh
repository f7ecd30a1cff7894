#!/usr/bin/env bash
# Build the local data plane that runs beside the real control plane, into a
# git-ignored cache folder, one directory per program and version:
#
#   .cache/dataplane/aws-load-balancer-controller-v3.6.2/  the AWS Load Balancer
#       Controller (module sigs.k8s.io/aws-load-balancer-controller/v3), with the
#       CRDs of the module's own helm chart copied beside it (crds/);
#   .cache/dataplane/traefik-v3.6.12/  Traefik (module github.com/traefik/traefik/v3),
#       the Gateway API proxy;
#   .cache/dataplane/prometheus-v<version>/  Prometheus: Debian's package
#       (apt-get install prometheus), linked here; nothing to compile.
#
# A program is rebuilt only when its inputs (module, version, build flags, Go
# version) differ from the stamp in its directory; each directory records its
# own build time in build-seconds, and the whole run's in .cache/dataplane/build-seconds.
# A cold build on 2 cores takes about 20 minutes (the controller about 5, Traefik
# about 12), a warm one nothing. One build at a time: a second caller waits for
# the first, then finds everything built.
#
#     bash local/kube/build-dataplane.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out_root="${1:-$here/../../.cache/dataplane}"
mkdir -p "$out_root"
out_root="$(cd "$out_root" && pwd)"
exec 9>"$out_root/.lock"
flock 9

ALB_MODULE=sigs.k8s.io/aws-load-balancer-controller/v3
ALB_VERSION=v3.6.2
TRAEFIK_MODULE=github.com/traefik/traefik/v3
TRAEFIK_VERSION=v3.6.12

# Both modules declare a Go this machine's 1.26 builds as it is (go 1.26.5 and
# go 1.25.0). A later pin that needs a newer Go gets it from the module proxy:
#     export GOTOOLCHAIN=go1.27.3
go_version="$(go env GOVERSION)"

total_start=$SECONDS
steps=3
summary=()
trees=()
trap 'rm -rf "${trees[@]}"' EXIT # the copied module trees, even when a build fails

# stamp_ok DIR INPUTS: DIR holds a program built from exactly INPUTS.
stamp_ok() { [[ -f "$1/.built" && "$(cat "$1/.built")" == "$2" ]]; }

# module_tree MODULE VERSION: a writable copy of the module's tree (the module
# cache is read-only), printed as a path.
module_tree() {
    local dir tmp
    # Run outside any module, so no go.mod or go.sum is touched.
    dir="$(cd / && go mod download -json "$1@$2" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
    [[ -n "$dir" && -d "$dir" ]] || { echo "no module tree for $1@$2" >&2; return 1; }
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/dataplane-build.XXXXXX")"
    cp -r "$dir/." "$tmp/"
    chmod -R u+w "$tmp"
    echo "$tmp"
}

# build STEP NAME MODULE VERSION PACKAGE GOFLAGS LDFLAGS: `go build PACKAGE` in the
# module's tree into $out_root/NAME-VERSION/NAME, unless already built so; the
# tree is left in $tree for what else the caller copies out of it.
build() {
    local step=$1 name=$2 module=$3 version=$4 package=$5 goflags=$6 ldflags=$7
    local dir="$out_root/$name-$version"
    local inputs="$module@$version $package goflags=[$goflags] ldflags=[$ldflags] $go_version"
    tree=""
    if stamp_ok "$dir" "$inputs"; then
        echo "data plane [$step/$steps] $name $version: cached in $dir"
        summary+=("$name $version: cached ($(cat "$dir/build-seconds") s when built)")
        return 0
    fi
    echo "data plane [$step/$steps] building $name $version ($((SECONDS - total_start)) s so far)"
    local start=$SECONDS
    rm -f "$dir/.built"
    mkdir -p "$dir"
    tree="$(module_tree "$module" "$version")"
    trees+=("$tree")
    (
        cd "$tree"
        CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} $goflags" go build -ldflags="$ldflags" \
            -o "$dir/$name.tmp" "$package"
    )
    mv "$dir/$name.tmp" "$dir/$name"
    echo "$((SECONDS - start))" > "$dir/build-seconds"
    echo "$inputs" > "$dir/.built"
    summary+=("$name $version: built in $(cat "$dir/build-seconds") s, $(du -m "$dir/$name" | cut -f1) MB")
}

# The controller, as its Makefile's `go build .` makes it; its CRDs from its helm chart
# (TargetGroupBinding, IngressClassParams, ...), as the chart installs them.
build 1 aws-load-balancer-controller "$ALB_MODULE" "$ALB_VERSION" . "" ""
if [[ -n "$tree" ]]; then
    mkdir -p "$out_root/aws-load-balancer-controller-$ALB_VERSION/crds"
    cp "$tree"/helm/aws-load-balancer-controller/crds/*.yaml \
        "$out_root/aws-load-balancer-controller-$ALB_VERSION/crds/"
fi

# Traefik, as its release builds it. -mod=mod: the module's go.sum lacks entries its
# replace lines need.
build 2 traefik "$TRAEFIK_MODULE" "$TRAEFIK_VERSION" ./cmd/traefik "-mod=mod -trimpath" \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"

# Prometheus: Debian's package, the same upstream program, installed in seconds
# instead of a long compile; linked into the cache so all three are found alike.
name=prometheus
if ! dpkg-query -W -f '${Status}' prometheus 2>/dev/null | grep -q 'install ok installed'; then
    echo "data plane [3/$steps] installing Debian's $name package ($((SECONDS - total_start)) s so far)"
    start=$SECONDS
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    installed=$((SECONDS - start))
else
    installed=""
fi
deb_version="$(dpkg-query -W -f '${Version}' prometheus)"
version="v${deb_version%%+*}"
dir="$out_root/$name-$version"
if [[ -z "$installed" ]] && stamp_ok "$dir" "prometheus $deb_version"; then
    echo "data plane [3/$steps] $name $version: cached in $dir"
    summary+=("$name $version: Debian's $deb_version, installed before")
else
    mkdir -p "$dir"
    ln -sfn "$(command -v prometheus || echo /usr/bin/prometheus)" "$dir/$name"
    echo "${installed:-0}" > "$dir/build-seconds"
    echo "prometheus $deb_version" > "$dir/.built"
    echo "data plane [3/$steps] $name $version: Debian's $deb_version, linked into $dir"
    summary+=("$name $version: Debian's $deb_version, installed in ${installed:-0} s")
fi

elapsed=$((SECONDS - total_start))
echo "$elapsed" > "$out_root/build-seconds"
echo "data plane: done in $elapsed s in $out_root"
for line in "${summary[@]}"; do
    echo "  $line"
done
