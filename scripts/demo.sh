#!/usr/bin/env bash
# The main job end to end on a built-in sample, generated here (nothing is downloaded but the
# Debian packages debootstrap fetches from the machine's own mirror):
#  1. a small Debian 12 guest set up the way a VMware guest is (tests/guests/debian.sh: root and
#     fstab on /dev/sda1, an initramfs without virtio, ifupdown on ens192 pinned to the VMware
#     MAC, open-vm-tools), built once and cached in /var/tmp;
#  2. exported the way vSphere does it: stream-optimized VMDK in an OVA with a VMware-style OVF
#     (2 vCPUs, 2 GiB, one vmxnet3 NIC) and a SHA256 manifest;
#  3. `hyper2kvm probe`, `hyper2kvm inspect`, and `hyper2kvm convert` (inspect + fix + convert,
#     the disk read in place from the OVA);
#     with its own validation (`qemu-img check`, and `--boot-test`: the guest booted with the
#     devices of the libvirt domain it writes beside the disk);
#  4. independent validation: `qemu-img check`, `virt-xml-validate` of the domain, then a
#     bounded boot of the output on virtio-blk and virtio-net (TCG) until the guest prints its
#     marker with its root on /dev/vda1 and its NIC configured.
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-target/release/hyper2kvm}
work=target/demo
rm -rf "$work" && mkdir -p "$work/out"

echo "== building (or reusing) the VMware-style Debian guest"
vmdk=$(tests/guests/debian.sh bios)
mac=$(cat "$(dirname "$vmdk")/mac")
cp "$vmdk" "$work/web01-disk1.vmdk"

echo "== packing it as a vSphere-style OVA"
size=$(stat -c %s "$work/web01-disk1.vmdk")
cat > "$work/web01.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="web01-disk1.vmdk" ovf:id="file1" ovf:size="$size"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="2" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"/></NetworkSection>
  <VirtualSystem ovf:id="web01"><Info>A virtual machine</Info><Name>web01</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian12_64Guest"><Info>OS</Info></OperatingSystemSection>
    <VirtualHardwareSection><Info>Virtual hardware requirements</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>vmx-19</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>2 virtual CPU(s)</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>2048MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>SCSI controller 0</rasd:ElementName><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>lsilogic</rasd:ResourceSubType><rasd:ResourceType>6</rasd:ResourceType></Item>
      <Item><rasd:AddressOnParent>0</rasd:AddressOnParent><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>4</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Address>$mac</rasd:Address><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="bios"/>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
OVF
(cd "$work" && printf 'SHA256(web01.ovf)= %s\nSHA256(web01-disk1.vmdk)= %s\n' \
  "$(sha256sum web01.ovf | cut -d' ' -f1)" "$(sha256sum web01-disk1.vmdk | cut -d' ' -f1)" > web01.mf \
  && tar --format=ustar -cf web01.ova web01.ovf web01.mf web01-disk1.vmdk \
  && rm web01.ovf web01.mf web01-disk1.vmdk)

echo "== hyper2kvm probe $work/web01.ova"
"$H2K" probe "$work/web01.ova"

echo "== hyper2kvm inspect $work/web01.ova"
"$H2K" inspect "$work/web01.ova"

echo "== hyper2kvm convert $work/web01.ova -o $work/out --compress --boot-test"
"$H2K" convert "$work/web01.ova" -o "$work/out" --compress --boot-test \
  --boot-marker HYPER2KVM-BOOT-OK | tee "$work/convert.out"

echo "== validating independently: qemu-img check, virt-xml-validate, a bounded boot on virtio (TCG)"
out=$(sed -n 's/^Output: \(.*\.qcow2\)$/\1/p' "$work/convert.out")
xml=$(sed -n 's/^Output: \(.*\.xml\)$/\1/p' "$work/convert.out")
qemu-img check -q "$out"
virt-xml-validate "$xml" domain
grep -q "<mac address=\"$mac\"/>" "$xml" || { echo "demo: FAILED — $xml lacks the OVF's MAC $mac"; exit 1; }
timeout 300 qemu-system-x86_64 -machine q35,accel=tcg -m 1024 -nodefaults -nographic -no-reboot \
  -display none -monitor none -serial "file:$work/console.log" \
  -drive "file=$out,format=qcow2,if=none,id=d0,snapshot=on" -device virtio-blk-pci,drive=d0 \
  -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$mac" &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT
for _ in $(seq 1 280); do
  if grep -aq 'HYPER2KVM-BOOT-OK.*net=' "$work/console.log" 2>/dev/null; then break; fi
  kill -0 $qemu 2>/dev/null || break
  sleep 1
done
kill $qemu 2>/dev/null || true
if marker=$(grep -a 'HYPER2KVM-BOOT-OK' "$work/console.log"); then
  echo "guest: $marker"
  echo "demo: OK — $out boots on KVM devices (virtio-blk, virtio-net)"
else
  echo "demo: FAILED — the converted guest did not reach its marker; last console lines:"
  tail -20 "$work/console.log"
  exit 1
fi
