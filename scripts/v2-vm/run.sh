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
# Needs root (apt-get, and a guest that is root on the shared files),
# Debian's apt (it installs qemu-system-x86, busybox-static, cpio when
# missing, and downloads linux-image-amd64's kernel package with
# `apt-get download`: the host's /boot is left alone).
#
# Prints, from inside the guest: the kernel version, the cgroup2 line of
# /proc/self/mountinfo, the root's cgroup.subtree_control, the command's
# output, `DROVER-V2-VM-RC=<code>` and `DROVER-V2-VM-LEFTOVERS=<cgroups
# under the root other than the ones the guest starts with, or none>`.
#
# Exit codes: 0 the command passed and left no cgroup behind; 1 it failed
# or left cgroups; 2 bad usage or setup failure; 124 the VM hit the timeout.
set -euo pipefail

if [ $# -lt 3 ]; then
  sed -n '2,30p' "$0" >&2
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
# The guest's /init is busybox: it must be the static build, with insmod.
static_busybox() {
  [ -x /bin/busybox ] || return 1
  /bin/busybox --list 2>/dev/null | grep -x insmod >/dev/null || return 1
  # ldd fails on a static binary.
  ! (command -v ldd >/dev/null && ldd /bin/busybox >/dev/null 2>&1)
}
static_busybox || missing+=(busybox-static)
command -v cpio >/dev/null || missing+=(cpio)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== v2-vm: apt-get install ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends \
         -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2; }
fi

# --- 2. Debian's kernel, unpacked (once) -------------------------------------
kernel_dir=$workdir/kernel
if [ ! -f "$kernel_dir/ready" ]; then
  echo "== v2-vm: fetching Debian's kernel package" >&2
  package=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$package" ] || { echo "v2-vm: apt-cache knows no linux-image-amd64 (apt-get update?)" >&2; exit 2; }
  rm -rf "$kernel_dir" && mkdir -p "$kernel_dir/download"
  (cd "$kernel_dir/download" && apt-get download "$package" >&2 2>/dev/null) \
    || { apt-get update >&2 && (cd "$kernel_dir/download" && apt-get download "$package" >&2); }
  dpkg -x "$kernel_dir"/download/*.deb "$kernel_dir/root"
  rm -rf "$kernel_dir/download"
  touch "$kernel_dir/ready"
fi
release=$(ls "$kernel_dir/root/lib/modules" | head -n1)
vmlinuz=$kernel_dir/root/boot/vmlinuz-$release
modules=$kernel_dir/root/lib/modules/$release

# --- 3. the initramfs: busybox and the 9p/virtio modules (once) --------------
# /init is not in it: it goes with each run (step 4), so that an edit of
# scripts/v2-vm/init always takes effect.
# A module's dependencies are in its .modinfo (`depends=a,b`); the package
# carries no modules.dep (depmod runs at install), so they are resolved
# here, dependencies first.
base=$workdir/initramfs-$release.cpio.gz
if [ ! -f "$base" ]; then
  echo "== v2-vm: building the initramfs" >&2
  tree=$(mktemp -d "$workdir/initramfs.XXXXXX")
  trap 'rm -rf "$tree"' EXIT
  mkdir -p "$tree"/{bin,dev,proc,sys,host,modules}
  cp /bin/busybox "$tree/bin/busybox"
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
  (cd "$tree" && find . | cpio -o -H newc --quiet | gzip -1) > "$base.tmp"
  mv "$base.tmp" "$base"
  rm -rf "$tree"
  trap - EXIT
fi

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
tr -d '\r' < "$run/console" | grep -q '^DROVER-V2-VM-RC=0$' || exit 1
tr -d '\r' < "$run/console" | grep -q '^DROVER-V2-VM-LEFTOVERS=none$' || exit 1
exit 0
