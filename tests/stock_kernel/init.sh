#!/bin/busybox sh
# Stage 1 of the stock-kernel guest: PID 1 in the initramfs (built by harness.py).
#
# Loads the modules that mount the root (virtio-pci, 9p, overlay; listed in load order in
# /etc/modules), mounts the host's / (read-only over 9p) as the lower layer of an overlay
# whose upper layer is a tmpfs, so the guest runs the host's installed project and Python
# and may write anywhere without touching the host; mounts the writable 9p results share
# at /etb-results, and hands over to stage 2 (/etb-results/stage2, written by the harness).
# Any failure ends PID 1: the kernel panics, reboots (panic=-1) and QEMU (-no-reboot) exits.
set -eu
/bin/busybox --install -s /bin
export PATH=/bin

mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
  insmod "/lib/modules/$module.ko"
done < /etc/modules

ninep="trans=virtio,version=9p2000.L,msize=512000"
mount -t 9p -o "$ninep,cache=loose,ro" hostroot /lower
mount -t tmpfs tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot
mkdir -p /newroot/etb-results
mount -t 9p -o "$ninep" results /newroot/etb-results

for fs in dev proc sys; do
  mount --move "/$fs" "/newroot/$fs"
done
exec switch_root /newroot /etb-results/stage2
