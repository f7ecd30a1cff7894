#!/usr/bin/env bash
# Build the real control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler) from the Go modules pinned in local/kube/go.mod, into a
# git-ignored cache folder. A binary is rebuilt only when it is missing or
# go.mod/go.sum changed; a cold build on 2 cores takes 15-30 minutes, a warm
# one nothing.
#
#     bash local/kube/build.sh [OUT_DIR]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="$(awk '$1 == "k8s.io/kubernetes" { print $2; exit }' "$here/go.mod")"
out="${1:-$here/../../.cache/kube/$version}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
stamp="$out/.built"
inputs="$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
    echo "control plane $version: cached in $out"
    exit 0
fi

minor="${version#v1.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
client=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in "$pkg" "$client"; do
    ldflags+=" -X $p.gitVersion=$version -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
done

targets=(
    "etcd=go.etcd.io/etcd/server/v3"
    "kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver"
    "kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager"
    "kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler"
)
start=$SECONDS
cd "$here"
echo "control plane $version: downloading modules"
go mod download
i=0
for t in "${targets[@]}"; do
    i=$((i + 1))
    name="${t%%=*}"
    echo "control plane $version: [$i/${#targets[@]}] building $name ($((SECONDS - start)) s so far)"
    # Packages shared by the four binaries are compiled once, into the Go
    # build cache, so the later ones take a fraction of the first.
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "${t#*=}"
    mv "$out/$name.tmp" "$out/$name"
done
elapsed=$((SECONDS - start))
# The build's own time, kept beside the stamp: the figure the docs quote comes from here.
echo "$elapsed" > "$out/build-seconds"
echo "$inputs" > "$stamp"
echo "control plane $version: built in $elapsed s into $out"
ls -l "$out"
