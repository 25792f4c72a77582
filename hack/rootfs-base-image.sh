#!/usr/bin/env bash
# Builds the project's base image without a container registry: debootstrap a
# Debian bookworm root filesystem with Python from Debian's mirror, then commit it
# with buildah as kubestream/base-python:3.11-bookworm (the name the root
# Dockerfile starts FROM; elsewhere users tag python:3.11-slim-bookworm so).
#
#   hack/rootfs-base-image.sh       idempotent: skips work already cached
#
# The rootfs tarball is cached in $KUBESTREAM_CACHE/rootfs; the image lives in
# buildah's local storage (/var/lib/containers), from where e2e/cluster/up
# exports it into containerd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=hack/versions.env
. "$here/versions.env"

cache=${KUBESTREAM_CACHE:-$HOME/.cache/kubestream}
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
image=${BASE_IMAGE:-kubestream/base-python:3.11-bookworm}
tarball="$cache/rootfs/debian-$suite-python.tar"

if buildah inspect --type image "$image" >/dev/null 2>&1; then
  echo "rootfs: image $image already built"
  exit 0
fi

if [ ! -f "$tarball" ]; then
  work="$cache/rootfs/$suite.work"
  rm -rf "$work"
  mkdir -p "$work"
  echo "rootfs: debootstrap $suite with python3 from $mirror (a few minutes)"
  # minbase keeps it small; python3-venv and pip so images can pip install;
  # ca-certificates so pip can reach PyPI over TLS.
  debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,ca-certificates,tini \
    "$suite" "$work" "$mirror" > "$cache/rootfs/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/rootfs/debootstrap.log"; exit 1; }
  # Shrink: apt lists and caches are not needed in an image.
  rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin "$work"/var/cache/apt/archives/*.deb
  # python:3.11-slim has `python`; keep the same entry point names.
  ln -sf python3 "$work/usr/bin/python"
  tar -C "$work" --numeric-owner -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$work"
fi

echo "rootfs: committing $image"
ctr=$(buildah from scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(buildah mount "$ctr")
tar -C "$mnt" --numeric-owner -xf "$tarball"
buildah umount "$ctr" >/dev/null
buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env LANG=C.UTF-8 --cmd python3 "$ctr"
buildah commit --quiet "$ctr" "$image" >/dev/null
echo "rootfs: built $image"
