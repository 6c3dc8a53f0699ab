//! The manifest pipeline (contract sections 1, 2 and 4): LOAD → VERIFY → INSPECT → FIX →
//! CONVERT → VALIDATE → OUTPUT. So far only the report it writes ([`report`]); the `Job` API
//! that runs the stages is still to come (issue 5).

pub mod report;
