//! Registry values as read from a guest's hives: whatever type and length the hive claims, the
//! value decodes without panicking, and what we write decodes back to itself. (The hive file
//! structure itself is parsed by libguestfs's hivex in the appliance, not by us.)
#![no_main]
use hyper2kvm::guest::registry::{RegValue, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&t, bytes)) = data.split_first() else { return };
    let v = decode(i64::from(t % 12), bytes);
    let _ = v.show();
    if !matches!(v, RegValue::Binary(_)) {
        let (t2, b2) = v.encode();
        assert_eq!(decode(t2, &b2), v, "a decoded value must survive being written back");
    }
});
