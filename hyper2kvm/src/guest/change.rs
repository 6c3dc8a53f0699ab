//! What fixing a guest did (or would do): a list of [`Change`]s, each a file (or command) with
//! its [`Action`] and the old and new content, for the report and the dry-run plan.

use serde::Serialize;

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Lines of a file changed (or removed).
    Edit,
    /// A file written (new or replaced).
    Create,
    /// A file or link removed.
    Delete,
    /// A guest program run.
    Run,
    /// A decision not to act, with the reason.
    Skip,
}

impl Action {
    /// Its name in reports and plans: `edit`, `create`, `delete`, `run`, `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Edit => "edit",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Run => "run",
            Action::Skip => "skip",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One change made (or planned) in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The fixer that made it.
    pub fixer: &'static str,
    /// What it does.
    pub action: Action,
    /// The guest file (or the command, for `run`).
    pub file: String,
    /// The old line or content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    /// The new line or content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new: Option<String>,
}

impl Change {
    /// A change by `fixer` to `file`, without content.
    pub(crate) fn new(fixer: &'static str, action: Action, file: impl Into<String>) -> Change {
        Change { fixer, action, file: file.into(), old: None, new: None }
    }

    /// The same with the old and new content.
    pub(crate) fn lines(mut self, old: Option<String>, new: Option<String>) -> Change {
        self.old = old;
        self.new = new;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_serialize_as_their_names() {
        for a in [Action::Edit, Action::Create, Action::Delete, Action::Run, Action::Skip] {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        let c = Change::new("fstab", Action::Edit, "/etc/fstab").lines(Some("a".into()), None);
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["action"], "edit");
        assert!(v.get("new").is_none());
    }
}
