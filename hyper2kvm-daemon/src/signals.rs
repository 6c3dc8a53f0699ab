//! Ctrl-C and SIGTERM cancel the running conversion cleanly (temporary outputs removed).

use hyper2kvm::CancelToken;

/// Makes SIGINT and SIGTERM set `token`.
pub fn cancel_on_interrupt(token: &CancelToken) {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, token.flag()) {
            tracing::warn!("cannot install the handler for signal {sig}: {e}");
        }
    }
}
