#!/usr/bin/env bash
# The built-in sample, made here (nothing is downloaded but the Debian packages debootstrap
# fetches): the VMware-style Debian 12 guest of tests/guests/debian.sh (built once, cached in
# /var/tmp), exported the way vSphere does it (stream-optimized VMDK in an OVA with a
# VMware-style OVF: 2 vCPUs, 2 GiB, one vmxnet3 NIC, and a SHA256 manifest).
#   scripts/sample.sh DIR   writes DIR/web01.ova and DIR/mac (the NIC's MAC, for a boot check)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: scripts/sample.sh DIR}
mkdir -p "$work"
echo "== building (or reusing) the VMware-style Debian guest"
vmdk=$(tests/guests/debian.sh bios)
mac=$(cat "$(dirname "$vmdk")/mac")
cp "$vmdk" "$work/web01-disk1.vmdk"
echo "$mac" > "$work/mac"

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
