#!/usr/bin/env bash
# The main job end to end on a built-in sample, generated here (nothing is downloaded):
#  1. a small guest disk: MBR partition table + ext4 filesystem with an /etc/fstab and
#     /etc/os-release, exported the way vSphere does it — a stream-optimized VMDK inside an
#     OVA with a VMware-style OVF (2 vCPUs, 2 GiB, one vmxnet3 NIC with a MAC) and a SHA256
#     manifest;
#  2. `hyper2kvm probe` of the OVA;
#  3. `hyper2kvm convert` to compressed qcow2, read in place from the OVA;
#  4. validation: `qemu-img check` of the output and `qemu-img compare` with the original.
# Guest inspection/fixing and the libvirt domain join this demo as those stages land.
set -euo pipefail
cd "$(dirname "$0")/.."
H2K=${H2K:-target/release/hyper2kvm}
work=target/demo
rm -rf "$work" && mkdir -p "$work/tree/etc" "$work/out"

echo "== building the sample guest disk"
cat > "$work/tree/etc/os-release" <<'OS'
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
OS
printf 'UUID=0b7e7e8c-1c9e-4cf2-9d3a-000000000001 / ext4 errors=remount-ro 0 1\n/dev/sdb1 /data ext4 defaults 0 2\n' > "$work/tree/etc/fstab"
echo demo-web01 > "$work/tree/etc/hostname"
truncate -s 255M "$work/root.ext4"
mkfs.ext4 -q -F -L root -U 0b7e7e8c-1c9e-4cf2-9d3a-000000000001 -d "$work/tree" "$work/root.ext4"
truncate -s 256M "$work/disk.raw"
echo 'start=2048, type=83, bootable' | sfdisk -q "$work/disk.raw"
dd if="$work/root.ext4" of="$work/disk.raw" bs=1M seek=1 conv=notrunc,sparse status=none
rm "$work/root.ext4"
qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized,adapter_type=lsilogic "$work/disk.raw" "$work/web01-disk1.vmdk"

echo "== packing it as a vSphere-style OVA"
size=$(stat -c %s "$work/web01-disk1.vmdk")
cat > "$work/web01.ovf" <<OVF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References><File ovf:href="web01-disk1.vmdk" ovf:id="file1" ovf:size="$size"/></References>
  <DiskSection><Info>Virtual disk information</Info>
    <Disk ovf:capacity="256" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
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
      <Item><rasd:Address>00:50:56:9a:10:01</rasd:Address><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName><rasd:InstanceID>5</rasd:InstanceID><rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
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

echo "== hyper2kvm convert $work/web01.ova -o $work/out --compress"
"$H2K" convert "$work/web01.ova" -o "$work/out" --compress | tee "$work/convert.out"

echo "== validating"
out=$(sed -n 's/^Output: //p' "$work/convert.out")
qemu-img check -q "$out"
qemu-img compare -q -f raw -F qcow2 "$work/disk.raw" "$out"
echo "demo: OK — $out is a valid qcow2 ($(stat -c %s "$out") bytes) with exactly the guest's data"
