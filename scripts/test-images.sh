#!/usr/bin/env bash
# test-images.sh: build the container images Drover's tests run, from Debian
# packages only (nothing is pulled from a registry), into OUTDIR:
#   OUTDIR/busybox        OCI layout, ref name drover-test/busybox:1:
#                         Entrypoint unset, Cmd ["sh"],
#                         Env DROVER_IMAGE_ENV=from-image, WorkingDir /;
#                         two layers: the lower holds busybox-static (/bin/busybox
#                         and its applet links) and /etc/drover-lower-only,
#                         the upper adds /etc/drover-image and whites out
#                         /etc/drover-lower-only.
#   OUTDIR/busybox-entry  the same layers (same digests), ref name
#                         drover-test/busybox-entry:1, Entrypoint
#                         ["/bin/echo","entry:"], Cmd ["default-arg"].
#   OUTDIR/busybox.tar    a `docker save` tarball (skopeo docker-archive) of
#                         the busybox image, tagged drover-test/busybox-save:1.
#
# The layouts are written by umoci and the tarball by skopeo (the Debian
# packages `umoci` and `skopeo`; `busybox-static` supplies the binary): the
# test images come from third-party tools, not from Drover's own reader.
#
# It is idempotent: OUTDIR/.complete records this script's checksum, and a
# complete OUTDIR built by the same script is left as it is (fast). A
# different or partial OUTDIR is rebuilt in a temporary directory beside it,
# then moved into place; concurrent runs for the same OUTDIR take turns
# (flock on OUTDIR.lock), so parallel test binaries build it once.
#
# Needs: root (apt-get for missing packages; umoci unpack/repack keeps
# ownership). Usage: scripts/test-images.sh OUTDIR
# Exit codes: 0 built or already there (last stdout line is OUTDIR);
#             1 bad usage or a tool missing after install; 2 a build step failed.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 1
fi
outdir="$(realpath -m "$1")"
script_sum="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

complete() { [[ -f "$outdir/.complete" && "$(cat "$outdir/.complete")" == "$script_sum" ]]; }
if complete; then
    echo "$outdir"
    exit 0
fi

# Test binaries run in parallel: one builds, the others wait and reuse.
mkdir -p "$(dirname "$outdir")"
exec 9>"$outdir.lock"
flock 9
if complete; then
    echo "$outdir"
    exit 0
fi

# The packages this script needs, installed when missing.
need=()
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
if [[ ${#need[@]} -gt 0 ]]; then
    echo "test-images: installing ${need[*]}" >&2
    # A fresh machine may have no package lists yet: update once and retry.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2 \
        || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2; } \
        || { echo "test-images: apt-get install ${need[*]} failed" >&2; exit 1; }
fi
if ! /bin/busybox --list >/dev/null 2>&1 || [[ "$(ldd /bin/busybox 2>&1 || true)" != *"not a dynamic"* ]]; then
    echo "test-images: /bin/busybox is not the static busybox (install busybox-static)" >&2
    exit 1
fi

work="$(mktemp -d "$outdir.building.XXXXXX")"
scratch="$(mktemp -d "$outdir.scratch.XXXXXX")"
chmod 755 "$work"
cleanup() { rm -rf "$work" "$scratch"; }
trap cleanup EXIT

fail() { echo "test-images: $*" >&2; exit 2; }

# ---- busybox and busybox-entry (OCI layouts) -------------------------------
build_busybox() {
    local layout="$work/busybox" ref="drover-test/busybox:1"
    local lower="$scratch/lower"
    mkdir -p "$lower/bin" "$lower/etc" "$lower/tmp" "$lower/root"
    chmod 1777 "$lower/tmp"
    cp /bin/busybox "$lower/bin/busybox"
    local applet
    for applet in $(/bin/busybox --list); do
        [[ "$applet" == busybox ]] || ln -sf busybox "$lower/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$lower/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$lower/etc/group"
    echo "in the lower layer only; the upper layer whites it out" > "$lower/etc/drover-lower-only"

    umoci init --layout "$layout" || fail "umoci init"
    umoci new --image "$layout:$ref" || fail "umoci new"
    # A fixed history time keeps the config (and so the digests) the same
    # from one build to the next.
    umoci insert --history.created "2024-01-01T00:00:00Z" --image "$layout:$ref" "$lower" / \
        || fail "umoci insert (lower layer)"

    # The upper layer: one repack holding both a new file and a whiteout.
    local bundle="$scratch/bundle"
    umoci unpack --image "$layout:$ref" "$bundle" >/dev/null || fail "umoci unpack"
    echo "drover test image" > "$bundle/rootfs/etc/drover-image"
    rm "$bundle/rootfs/etc/drover-lower-only"
    umoci repack --history.created "2024-01-01T00:00:00Z" --image "$layout:$ref" "$bundle" \
        || fail "umoci repack (upper layer)"
    rm -rf "$bundle"

    umoci config --history.created "2024-01-01T00:00:00Z" --image "$layout:$ref" \
        --config.cmd sh --config.env DROVER_IMAGE_ENV=from-image --config.workingdir / \
        || fail "umoci config (busybox)"

    # busybox-entry: a copy of the layout (same layer blobs), configured anew
    # under its own name, the busybox name removed.
    local entry="$work/busybox-entry" entry_ref="drover-test/busybox-entry:1"
    cp -a "$layout" "$entry"
    umoci config --history.created "2024-01-01T00:00:00Z" --image "$entry:$ref" --tag "$entry_ref" \
        --config.entrypoint /bin/echo --config.entrypoint entry: --config.cmd default-arg \
        || fail "umoci config (busybox-entry)"
    umoci rm --image "$entry:$ref" || fail "umoci rm"
    umoci gc --layout "$entry" || fail "umoci gc"
    umoci gc --layout "$layout" || fail "umoci gc"
}

# ---- busybox.tar (docker save) ---------------------------------------------
build_busybox_tar() {
    skopeo --insecure-policy copy --quiet "oci:$work/busybox:drover-test/busybox:1" \
        "docker-archive:$work/busybox.tar:drover-test/busybox-save:1" >&2 \
        || fail "skopeo copy to docker-archive"
}

build_busybox
build_busybox_tar

# ---- add further images below, each in a section of its own ----------------

echo "$script_sum" > "$work/.complete"
rm -rf "$outdir"
mv "$work" "$outdir"
rm -rf "$scratch"
trap - EXIT
echo "$outdir"
