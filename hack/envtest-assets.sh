#!/usr/bin/env bash
# Builds the envtest binaries (kube-apiserver, etcd) and kubectl from their Go modules into $1 (default bin/k8s).
# setup-envtest downloads prebuilt binaries, which this project's machines cannot reach; the Go
# module proxy serves the sources, so they are built here once and cached by version.
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-1.37.2}"
STAGING_VERSION="${STAGING_VERSION:-0.37.2}"
ETCD_VERSION="${ETCD_VERSION:-3.7.0}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/bin/k8s}"
STAMP="$OUT/.version"
WANT="kubernetes=$K8S_VERSION etcd=$ETCD_VERSION kubectl"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" && -x "$OUT/kubectl" && "$(cat "$STAMP" 2>/dev/null)" == "$WANT" ]]; then
  exit 0
fi

echo ">> Building envtest binaries ($WANT) into $OUT; the first build takes about ten minutes"
mkdir -p "$OUT"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

export GOFLAGS=-mod=mod
go mod init envtest-assets >/dev/null 2>&1
# k8s.io/kubernetes replaces its staging modules with ./staging/...; outside its tree, pin each
# to the published release of the same minor.
gomod="$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
  echo "require k8s.io/kubernetes v$K8S_VERSION"
  echo "require go.etcd.io/etcd/server/v3 v$ETCD_VERSION"
  grep -E '^\s*k8s\.io/[^ ]+ => \./staging/' "$gomod" | awk -v v="v$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
} >>go.mod
cat >tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
go mod tidy -e >/dev/null 2>&1 || true
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$OUT/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$OUT/etcd" go.etcd.io/etcd/server/v3
# kubectl, for the demo and the end-to-end tests, so that none relies on one being installed.
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$OUT/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "$WANT" >"$STAMP"
echo ">> envtest binaries ready in $OUT"
