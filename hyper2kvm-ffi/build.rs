//! Gives the shared library its soname, `libhyper2kvm.so.1`: the major number changes only
//! when the C ABI breaks.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libhyper2kvm.so.1");
}
