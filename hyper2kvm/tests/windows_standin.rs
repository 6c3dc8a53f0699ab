//! The Windows stand-in's building blocks (no real Windows can run here, so the Windows tests
//! use real formats instead): a registry hive written by our own code from the format's
//! description, filled and read back by hivex's own tool, as a real SOFTWARE hive would be.

#![allow(clippy::unwrap_used)]

#[path = "../../tests/support/regf.rs"]
mod regf;

#[test]
fn an_empty_hive_of_ours_takes_the_keys_of_a_windows_install() {
    let t = tempfile::tempdir().unwrap();
    let hive = t.path().join("SOFTWARE");
    let reg = r#"Windows Registry Editor Version 5.00

[\Microsoft]

[\Microsoft\Windows NT]

[\Microsoft\Windows NT\CurrentVersion]
"ProductName"="Windows Server 2019 Datacenter"
"CurrentMajorVersionNumber"=dword:0000000a
"CurrentMinorVersionNumber"=dword:00000000
"CurrentBuildNumber"="17763"
"InstallationType"="Server"

[\Microsoft\Windows]

[\Microsoft\Windows\CurrentVersion]
"DevicePath"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,00,25,00,5c,00,69,00,6e,00,66,00,00,00
"#;
    regf::hive_from_reg(&hive, "SOFTWARE", reg);
    let bytes = std::fs::read(&hive).unwrap();
    assert_eq!(&bytes[..4], b"regf");
    let text = regf::export(&hive, "SOFTWARE");
    for want in [
        r#"[SOFTWARE\Microsoft\Windows NT\CurrentVersion]"#,
        r#""ProductName"=str(1):"Windows Server 2019 Datacenter""#,
        r#""CurrentMajorVersionNumber"=dword:0000000a"#,
        r#""CurrentBuildNumber"=str(1):"17763""#,
        r#""InstallationType"=str(1):"Server""#,
        r#""DevicePath"=str(2):"%SystemRoot%\inf""#,
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
    // A hive that is not ours is refused by hivex: the check can fail.
    let mut broken = regf::empty_hive("SOFTWARE");
    broken[0x1FC] ^= 0xFF;
    let bad = t.path().join("BROKEN");
    std::fs::write(&bad, broken).unwrap();
    let out = std::process::Command::new("hivexregedit")
        .args(["--export", "--prefix", "SOFTWARE"])
        .arg(&bad)
        .arg("\\")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad checksum must be refused");
}
