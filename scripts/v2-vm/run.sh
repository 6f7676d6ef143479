#!/usr/bin/env bash
# v2-vm/run.sh: boots Debian's kernel (the `linux-image-amd64` package)
# under qemu-system-x86_64 with TCG (no KVM is needed or used), with the
# host's root filesystem mounted read-only over 9p (virtfs) so test binaries
# run as they were built, cgroup v2 mounted at /sys/fs/cgroup with the cpu,
# memory, pids and io controllers enabled in the root's subtree, and runs
# one command inside as root. The guest's serial console is this script's
# stdout; the guest powers off when the command ends.
#
# Usage: run.sh WORKDIR TIMEOUT_SECS COMMAND [ARGS...]
#   WORKDIR       where the kernel and the initramfs are kept (made if
#                 missing; reused, so a second run downloads nothing)
#   TIMEOUT_SECS  hard bound on the VM's life; qemu is killed after it
#   COMMAND       an absolute path on the host (seen by the guest at the
#                 same path), run with PATH, TMPDIR (a tmpfs under /run),
#                 DROVER_V2_VM=1 and nothing else in its environment
#
# Needs root (apt-get, and a guest that is root on the shared files) and
# Debian's apt: it installs qemu-system-x86 and cpio when missing, and
# downloads linux-image-amd64's kernel package and busybox-static with
# `apt-get download`, unpacking them under WORKDIR (nothing of them is
# installed: the host's /boot is left alone).
#
# Prints, from inside the guest: the kernel version, the cgroup2 line of
# /proc/self/mountinfo, the root's cgroup.subtree_control, the command's
# output, `DROVER-V2-VM-RC=<code>` and `DROVER-V2-VM-LEFTOVERS=<cgroups
# under the root other than the ones the guest starts with, or none>`.
#
# Exit codes: 0 the command passed and left no cgroup behind; 1 it failed,
# left cgroups, or the guest could not set up (it prints
# DROVER-V2-VM-SETUP-FAILED and why); 2 bad usage or a host-side setup
# failure; 124 the VM hit the timeout.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,32p' "$0" >&2
  exit 2
fi
workdir=$1
timeout_secs=$2
shift 2
case "$1" in
  /*) ;;
  *) echo "v2-vm: COMMAND must be an absolute path: $1" >&2; exit 2 ;;
esac
case "$1" in
  /run/*) echo "v2-vm: COMMAND must not live under /run (a tmpfs in the guest): $1" >&2; exit 2 ;;
esac
mkdir -p "$workdir"
workdir=$(cd "$workdir" && pwd)

# --- 1. the host's tools -----------------------------------------------------
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== v2-vm: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends \
         -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2; }
fi

# --- 2. Debian's kernel and static busybox (once) ---------------------------
# Downloaded and unpacked with dpkg -x, never installed: the host's /boot
# is untouched, and busybox-static (which conflicts with the busybox
# package a host may need) stays off the host.
download() { # PACKAGE DIR: unpacks PACKAGE into DIR/root
  local package=$1 dir=$2
  echo "== v2-vm: fetching $package" >&2
  rm -rf "$dir" && mkdir -p "$dir/download"
  (cd "$dir/download" && apt-get download "$package" >&2 2>/dev/null) \
    || { apt-get update >&2 && (cd "$dir/download" && apt-get download "$package" >&2); }
  dpkg -x "$dir"/download/*.deb "$dir/root"
  rm -rf "$dir/download"
}
busybox=$workdir/busybox-static/root/bin/busybox
if [ ! -x "$busybox" ]; then
  download busybox-static "$workdir/busybox-static"
fi
kernel_package=$(apt-cache depends linux-image-amd64 2>/dev/null \
  | awk '/Depends: linux-image-/ {print $2; exit}')
if [ -z "$kernel_package" ]; then
  apt-get update >&2
  kernel_package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
fi
[ -n "$kernel_package" ] || { echo "v2-vm: apt knows no linux-image-amd64" >&2; exit 2; }

# --- 3. the kernel and the initramfs: busybox and the 9p/virtio modules ----
# Kept per kernel package in WORKDIR/<package> (vmlinuz, initramfs.cpio.gz);
# the unpacked package (400 MB of modules) is removed once they are made.
# /init is not in the initramfs: it goes with each run (step 4), so that an
# edit of scripts/v2-vm/init always takes effect. A module's dependencies
# are in its .modinfo (`depends=a,b`); the package carries no modules.dep
# (depmod runs at install), so they are resolved here, dependencies first.
kernel_dir=$workdir/$kernel_package
if [ ! -f "$kernel_dir/initramfs.cpio.gz" ]; then
  # Built aside and renamed into place, so two lanes racing both end with
  # one whole copy.
  building=$(mktemp -d "$kernel_dir.building.XXXXXX")
  trap 'rm -rf "$building"' EXIT
  download "$kernel_package" "$building"
  release=$(ls "$building/root/lib/modules" | head -n1)
  modules=$building/root/lib/modules/$release
  cp "$building/root/boot/vmlinuz-$release" "$building/vmlinuz"
  echo "== v2-vm: building the initramfs" >&2
  tree=$building/tree
  mkdir -p "$tree"/{bin,dev,proc,sys,host,modules}
  cp "$busybox" "$tree/bin/busybox"
  order=()
  add_module() {
    local name=$1 file dep
    for seen in "${order[@]:-}"; do [ "$seen" = "$name" ] && return 0; done
    file=$(find "$modules/kernel" -name "$name.ko" -o -name "${name//_/-}.ko" | head -n1)
    [ -n "$file" ] || { echo "v2-vm: module $name is not in $modules" >&2; exit 2; }
    for dep in $(tr '\0' '\n' < "$file" | sed -n 's/^depends=//p' | tr ',' ' '); do
      add_module "$dep"
    done
    cp "$file" "$tree/modules/$name.ko"
    order+=("$name")
  }
  for wanted in virtio_pci 9pnet_virtio 9p; do add_module "$wanted"; done
  printf '%s\n' "${order[@]}" > "$tree/modules/order"
  (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) > "$building/initramfs.cpio.gz"
  echo "$release" > "$building/release"
  rm -rf "$building/root" "$tree"
  [ -f "$kernel_dir/initramfs.cpio.gz" ] || rm -rf "$kernel_dir"
  mv -T "$building" "$kernel_dir" 2>/dev/null || rm -rf "$building"
  trap - EXIT
fi
release=$(cat "$kernel_dir/release")
vmlinuz=$kernel_dir/vmlinuz
base=$kernel_dir/initramfs.cpio.gz

# --- 4. /init and this run's command, as a second cpio appended to the first -
# (the kernel unpacks concatenated archives in order)
run=$(mktemp -d "$workdir/run.XXXXXX")
trap 'rm -rf "$run"' EXIT
mkdir -p "$run/tree"
install -m 0755 "$(dirname "$0")/init" "$run/tree/init"
: > "$run/tree/command"
for arg in "$@"; do printf '%s\0' "$arg" >> "$run/tree/command"; done
(cd "$run/tree" && printf 'init\ncommand\n' | cpio -o -H newc --quiet | gzip -1) > "$run/command.cpio.gz"
cat "$base" "$run/command.cpio.gz" > "$run/initrd"

# --- 5. boot --------------------------------------------------------------
# -cpu max: TCG's widest CPU, so host-built binaries find the instructions
# they were compiled for. panic=-1 with -no-reboot turns a guest panic
# (init dying) into qemu exiting.
echo "== v2-vm: booting $release under qemu TCG (timeout ${timeout_secs}s)" >&2
status=0
timeout --kill-after=10 "$timeout_secs" qemu-system-x86_64 \
  -accel tcg -cpu max -smp 2 -m 1024 \
  -nographic -no-reboot -monitor none -serial stdio \
  -kernel "$vmlinuz" -initrd "$run/initrd" \
  -append "console=ttyS0 loglevel=3 panic=-1 rdinit=/init" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  | tee "$run/console" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "v2-vm: the VM did not finish within ${timeout_secs}s" >&2
  exit 124
fi
tr -d '\r' < "$run/console" > "$run/console.txt"
grep -qx 'DROVER-V2-VM-RC=0' "$run/console.txt" || exit 1
grep -qx 'DROVER-V2-VM-LEFTOVERS=none' "$run/console.txt" || exit 1
exit 0
