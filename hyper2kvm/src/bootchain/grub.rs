//! What GRUB will boot, read from the files it reads: `grub.cfg` (menu entries, submenus,
//! `set default`, the `search` that sets the root device, `configfile` stubs), `grubenv`
//! (`saved_entry`, `kernelopts`) and Boot Loader Specification entries
//! (`/boot/loader/entries/*.conf`, which RHEL 8/9's `blscfg` command turns into menu entries).
//!
//! Only parsing lives here; [`super`] finds the files in the guest.

/// One bootable entry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// The menu title.
    pub title: String,
    /// `--id` (or `$menuentry_id_option 'ID'`); for a BLS entry its file name without `.conf`.
    pub id: Option<String>,
    /// The kernel path as GRUB names it (relative to the entry's root device).
    pub linux: Option<String>,
    /// The kernel command line, `$kernelopts` and other variables expanded where known.
    pub args: String,
    /// The initramfs paths (early microcode first, the main image last).
    pub initrd: Vec<String>,
    /// The file system the paths are on, by UUID (`search --fs-uuid --set=root X`).
    pub root_uuid: Option<String>,
    /// The file system the paths are on, by label (`search --label --set=root X`).
    pub root_label: Option<String>,
}

/// One item of a menu: an entry, or a submenu holding more items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A `menuentry`.
    Entry(Entry),
    /// A `submenu` with its title, id and items.
    Submenu(String, Option<String>, Vec<Item>),
}

/// A parsed `grub.cfg`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The top-level menu.
    pub items: Vec<Item>,
    /// The value of the last `set default=` that is not `${next_entry}` (GRUB's one-shot).
    pub default: Option<String>,
    /// The file a stub hands over to with `configfile` (variables expanded where known).
    pub configfile: Option<String>,
    /// The file system a `configfile` stub searched for (by UUID).
    pub configfile_uuid: Option<String>,
    /// The configuration calls `blscfg`: the entries are the BLS files.
    pub blscfg: bool,
}

/// Splits a GRUB script line into words, honouring single and double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if cur.is_empty() && !any => break,
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (None, '\\') | (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() || c == ';' => {
                if !cur.is_empty() || any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (_, c) => {
                cur.push(c);
                any = true;
            }
        }
    }
    if !cur.is_empty() || any {
        out.push(cur);
    }
    out
}

/// Expands `$name` and `${name}` from `vars`; unknown variables become empty, as in GRUB.
fn expand(s: &str, vars: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, next) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(j) => (&inner[..j], &inner[j + 1..]),
                None => (inner, ""),
            }
        } else {
            let j = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..j], &after[j..])
        };
        if let Some((_, v)) = vars.iter().rev().find(|(k, _)| k == name) {
            out.push_str(v);
        }
        rest = next;
    }
    out.push_str(rest);
    out
}

/// The `--set=root` target of a `search` line: (uuid, label).
fn search(ws: &[String]) -> (Option<String>, Option<String>) {
    let sets_root = ws.iter().any(|w| w == "--set=root" || w == "--set")
        || ws.windows(2).any(|p| p[0] == "--set" && p[1] == "root")
        || ws[0].starts_with("search.") && ws.get(2).is_some_and(|w| w == "root");
    if !sets_root {
        return (None, None);
    }
    let value = ws.iter().skip(1).find(|w| !w.starts_with('-')).cloned();
    let by_uuid = ws.iter().any(|w| w == "--fs-uuid" || w == "-u") || ws[0] == "search.fs_uuid";
    let by_label = ws.iter().any(|w| w == "--label" || w == "-l") || ws[0] == "search.fs_label";
    match (by_uuid, by_label) {
        (true, _) => (value, None),
        (_, true) => (None, value),
        _ => (None, None),
    }
}

/// Parses a `grub.cfg`. `env` holds `grubenv`'s variables (for `$kernelopts`).
pub fn parse(text: &str, env: &[(String, String)]) -> Config {
    let mut cfg = Config::default();
    let mut vars: Vec<(String, String)> = env.to_vec();
    // The stack of open blocks: each holds the items collected so far and what it is.
    enum Open {
        Menu(Option<(String, Option<String>)>, Vec<Item>),
        Entry(Entry),
        Other,
    }
    let mut stack: Vec<Open> = vec![Open::Menu(None, Vec::new())];
    let mut top_uuid: Option<String> = None;
    for raw in text.lines() {
        let ws = words(raw.trim());
        let Some(first) = ws.first() else { continue };
        let in_entry = matches!(stack.last(), Some(Open::Entry(_)));
        match first.as_str() {
            "menuentry" | "submenu" => {
                let title = ws.get(1).cloned().unwrap_or_default();
                let id = ws
                    .iter()
                    .position(|w| w == "--id" || w == "$menuentry_id_option")
                    .and_then(|i| ws.get(i + 1).cloned())
                    .or_else(|| {
                        ws.iter().find_map(|w| w.strip_prefix("--id=").map(str::to_string))
                    });
                if first == "menuentry" {
                    stack.push(Open::Entry(Entry {
                        title,
                        id,
                        root_uuid: top_uuid.clone(),
                        ..Entry::default()
                    }));
                } else {
                    stack.push(Open::Menu(Some((title, id)), Vec::new()));
                }
                continue;
            }
            "}" => {
                match stack.pop() {
                    Some(Open::Entry(e)) => {
                        if let Some(Open::Menu(_, items)) = stack.last_mut() {
                            items.push(Item::Entry(e));
                        }
                    }
                    Some(Open::Menu(Some((t, id)), items)) => {
                        if let Some(Open::Menu(_, parent)) = stack.last_mut() {
                            parent.push(Item::Submenu(t, id, items));
                        }
                    }
                    Some(top @ Open::Menu(None, _)) => stack.push(top),
                    _ => {}
                }
                continue;
            }
            "function" if raw.trim_end().ends_with('{') => {
                stack.push(Open::Other);
                continue;
            }
            _ => {}
        }
        match first.as_str() {
            "set" => {
                if let Some((k, v)) = ws.get(1).and_then(|a| a.split_once('=')) {
                    let v = v.to_string();
                    if k == "default" && !in_entry {
                        if v != "${next_entry}" && v != "$next_entry" {
                            cfg.default = Some(expand(&v, &vars));
                        }
                    } else {
                        let v = expand(&v, &vars);
                        vars.push((k.to_string(), v));
                    }
                }
            }
            "linux" | "linuxefi" | "linux16" | "kernel" => {
                if let Some(Open::Entry(e)) = stack.last_mut() {
                    e.linux = ws.get(1).map(|p| expand(p, &vars));
                    let args: Vec<String> =
                        ws[2.min(ws.len())..].iter().map(|w| expand(w, &vars)).collect();
                    e.args = args.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
                }
            }
            "initrd" | "initrdefi" | "initrd16" => {
                if let Some(Open::Entry(e)) = stack.last_mut() {
                    e.initrd = ws[1..].iter().map(|w| expand(w, &vars)).collect();
                }
            }
            "configfile" if !in_entry => {
                cfg.configfile = ws.get(1).map(|p| expand(p, &vars));
                cfg.configfile_uuid = top_uuid.clone();
            }
            "blscfg" => cfg.blscfg = true,
            s if s == "search" || s.starts_with("search.") => {
                let (uuid, label) = search(&ws);
                match stack.last_mut() {
                    Some(Open::Entry(e)) => {
                        if uuid.is_some() {
                            e.root_uuid = uuid;
                            e.root_label = None;
                        } else if label.is_some() {
                            e.root_label = label;
                            e.root_uuid = None;
                        }
                    }
                    _ => {
                        if uuid.is_some() {
                            top_uuid = uuid;
                        }
                    }
                }
            }
            _ => {}
        }
        // Blocks that are not menus (if/else/fi have no braces; functions do).
        if raw.trim_end().ends_with('{') && !matches!(first.as_str(), "menuentry" | "submenu") {
            stack.push(Open::Other);
        }
    }
    while stack.len() > 1 {
        let done = stack.pop();
        if let (Some(Open::Entry(e)), Some(Open::Menu(_, items))) = (done, stack.last_mut()) {
            items.push(Item::Entry(e));
        }
    }
    if let Some(Open::Menu(_, items)) = stack.pop() {
        cfg.items = items;
    }
    // `configfile` with `$prefix`/`($root)`: keep the path on the device.
    if let Some(c) = cfg.configfile.take() {
        let path = c.rsplit_once(')').map_or(c.as_str(), |(_, p)| p).to_string();
        cfg.configfile = Some(path);
    }
    cfg
}

/// Parses `grubenv` (`KEY=VALUE` lines; `#` padding).
pub fn parse_env(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parses one BLS entry; `id` is its file name without `.conf`.
pub fn parse_bls(id: &str, text: &str, env: &[(String, String)]) -> Entry {
    let mut e = Entry { id: Some(id.to_string()), ..Entry::default() };
    for line in text.lines() {
        let line = line.trim();
        let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let v = v.trim();
        match k {
            "title" => e.title = v.to_string(),
            "linux" | "efi" => e.linux = Some(v.to_string()),
            "initrd" => e
                .initrd
                .extend(v.split_whitespace().map(|w| expand(w, env)).filter(|w| !w.is_empty())),
            "options" => {
                let o = expand(v, env);
                e.args = if e.args.is_empty() { o } else { format!("{} {o}", e.args) };
            }
            _ => {}
        }
    }
    if e.title.is_empty() {
        e.title = id.to_string();
    }
    e.args = e.args.split_whitespace().collect::<Vec<_>>().join(" ");
    e
}

/// Orders BLS entries as GRUB's `blscfg` shows them: newest version first.
pub fn sort_bls(entries: &mut [Entry]) {
    let key = |e: &Entry| {
        e.id.as_deref()
            .unwrap_or("")
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    entries.sort_by_key(|e| std::cmp::Reverse(key(e)));
}

/// The entry GRUB boots by default: `default` is an index, a title, an id, or a
/// `>`-separated path into submenus; an empty or unknown value means the first entry.
/// Returns the entry and how it was chosen.
pub fn default_entry<'a>(items: &'a [Item], default: Option<&str>) -> Option<(&'a Entry, String)> {
    fn first(items: &[Item]) -> Option<&Entry> {
        match items.first()? {
            Item::Entry(e) => Some(e),
            Item::Submenu(_, _, inner) => first(inner),
        }
    }
    fn find<'a>(items: &'a [Item], parts: &[&str]) -> Option<&'a Entry> {
        let (head, rest) = parts.split_first()?;
        let item = match head.parse::<usize>() {
            Ok(n) => items.get(n)?,
            Err(_) => items.iter().find(|i| match i {
                Item::Entry(e) => e.title == *head || e.id.as_deref() == Some(*head),
                Item::Submenu(t, id, _) => t == head || id.as_deref() == Some(*head),
            })?,
        };
        match (item, rest.is_empty()) {
            (Item::Entry(e), true) => Some(e),
            (Item::Submenu(_, _, inner), true) => first(inner),
            (Item::Submenu(_, _, inner), false) => find(inner, rest),
            (Item::Entry(_), false) => None,
        }
    }
    match default.map(str::trim).filter(|d| !d.is_empty()) {
        Some(d) => match find(items, &d.split('>').collect::<Vec<_>>()) {
            Some(e) => Some((e, format!("default {d:?}"))),
            None => first(items).map(|e| (e, format!("default {d:?} names no entry: the first"))),
        },
        None => first(items).map(|e| (e, "the first entry".to_string())),
    }
}

/// The value of `key=` on a kernel command line (the last one wins, as in the kernel).
pub fn arg<'a>(args: &'a str, key: &str) -> Option<&'a str> {
    args.split_whitespace().rev().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape Debian 12's update-grub writes (trimmed), GRUB_DISABLE_LINUX_UUID=true.
    const DEBIAN: &str = r#"
if [ -s $prefix/grubenv ]; then
  set have_grubenv=true
  load_env
fi
if [ "${next_entry}" ] ; then
   set default="${next_entry}"
   set next_entry=
   save_env next_entry
   set boot_once=true
else
   set default="0"
fi
function load_video {
  if [ x$feature_all_video_module = xy ]; then
    insmod all_video
  fi
}
menuentry 'Debian GNU/Linux' --class debian --class gnu-linux --class gnu --class os $menuentry_id_option 'gnulinux-simple-/dev/sda1' {
	load_video
	insmod ext2
	set root='hd0,msdos1'
	if [ x$feature_platform_search_hint = xy ]; then
	  search --no-floppy --fs-uuid --set=root --hint-bios=hd0,msdos1  9dfa-11
	else
	  search --no-floppy --fs-uuid --set=root 9dfa-11
	fi
	echo	'Loading Linux 6.1.0-28-amd64 ...'
	linux	/boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro  console=ttyS0,115200 quiet
	initrd	/boot/initrd.img-6.1.0-28-amd64
}
submenu 'Advanced options for Debian GNU/Linux' $menuentry_id_option 'gnulinux-advanced-/dev/sda1' {
	menuentry 'Debian GNU/Linux, with Linux 6.1.0-28-amd64' --class debian $menuentry_id_option 'gnulinux-6.1.0-28-amd64-advanced-/dev/sda1' {
		search --no-floppy --fs-uuid --set=root 9dfa-11
		linux	/boot/vmlinuz-6.1.0-28-amd64 root=/dev/sda1 ro single
		initrd	/boot/intel-ucode.img /boot/initrd.img-6.1.0-28-amd64
	}
	menuentry 'Debian GNU/Linux, with Linux 5.10.0-30-amd64' --class debian $menuentry_id_option 'gnulinux-5.10.0-30-amd64-advanced-/dev/sda1' {
		search --no-floppy --fs-uuid --set=root 9dfa-11
		linux	/boot/vmlinuz-5.10.0-30-amd64 root=/dev/sda1 ro
		initrd	/boot/initrd.img-5.10.0-30-amd64
	}
}
"#;

    #[test]
    fn debian_update_grub_output() {
        let cfg = parse(DEBIAN, &[]);
        assert_eq!(cfg.default.as_deref(), Some("0"));
        assert_eq!(cfg.items.len(), 2, "{cfg:#?}");
        let (e, how) = default_entry(&cfg.items, cfg.default.as_deref()).unwrap();
        assert_eq!(e.title, "Debian GNU/Linux");
        assert_eq!(how, "default \"0\"");
        assert_eq!(e.linux.as_deref(), Some("/boot/vmlinuz-6.1.0-28-amd64"));
        assert_eq!(arg(&e.args, "root"), Some("/dev/sda1"));
        assert_eq!(e.initrd, vec!["/boot/initrd.img-6.1.0-28-amd64"]);
        assert_eq!(e.root_uuid.as_deref(), Some("9dfa-11"));
        assert_eq!(e.id.as_deref(), Some("gnulinux-simple-/dev/sda1"));
        // By id path into the submenu, and by index path.
        let by_id = "gnulinux-advanced-/dev/sda1>gnulinux-5.10.0-30-amd64-advanced-/dev/sda1";
        let (old, _) = default_entry(&cfg.items, Some(by_id)).unwrap();
        assert_eq!(old.linux.as_deref(), Some("/boot/vmlinuz-5.10.0-30-amd64"));
        let (single, _) = default_entry(&cfg.items, Some("1>0")).unwrap();
        assert_eq!(single.initrd.last().unwrap(), "/boot/initrd.img-6.1.0-28-amd64");
        assert_eq!(single.initrd.len(), 2);
        let (by_title, _) =
            default_entry(&cfg.items, Some("Advanced options for Debian GNU/Linux")).unwrap();
        assert_eq!(by_title.title, "Debian GNU/Linux, with Linux 6.1.0-28-amd64");
        let (_, how) = default_entry(&cfg.items, Some("nonsense")).unwrap();
        assert!(how.contains("names no entry"), "{how}");
    }

    #[test]
    fn efi_stub_hands_over_with_configfile() {
        let stub = "search.fs_uuid 1c2d-33 root hd0,gpt2 \nset prefix=($root)'/boot/grub'\nconfigfile $prefix/grub.cfg\n";
        let cfg = parse(stub, &[]);
        assert_eq!(cfg.configfile.as_deref(), Some("/boot/grub/grub.cfg"));
        assert_eq!(cfg.configfile_uuid.as_deref(), Some("1c2d-33"));
        assert!(cfg.items.is_empty());
    }

    #[test]
    fn bls_entries_with_kernelopts() {
        let env = parse_env(
            "# GRUB Environment Block\nsaved_entry=abc-4.18.0-513.el8.x86_64\nkernelopts=root=/dev/mapper/rhel-root ro crashkernel=auto resume=/dev/mapper/rhel-swap rd.lvm.lv=rhel/root rd.lvm.lv=rhel/swap\n####",
        );
        let cfg = parse("insmod blscfg\nblscfg\n", &env);
        assert!(cfg.blscfg);
        let mut es = vec![
            parse_bls(
                "abc-4.18.0-477.el8.x86_64",
                "title RHEL (4.18.0-477)\nversion 4.18.0-477.el8.x86_64\nlinux /vmlinuz-4.18.0-477.el8.x86_64\ninitrd /initramfs-4.18.0-477.el8.x86_64.img $tuned_initrd\noptions $kernelopts $tuned_params\n",
                &env,
            ),
            parse_bls(
                "abc-4.18.0-513.el8.x86_64",
                "title RHEL (4.18.0-513)\nlinux /vmlinuz-4.18.0-513.el8.x86_64\ninitrd /initramfs-4.18.0-513.el8.x86_64.img\noptions $kernelopts\n",
                &env,
            ),
        ];
        sort_bls(&mut es);
        assert_eq!(es[0].id.as_deref(), Some("abc-4.18.0-513.el8.x86_64"));
        assert_eq!(arg(&es[0].args, "root"), Some("/dev/mapper/rhel-root"));
        assert_eq!(arg(&es[1].args, "resume"), Some("/dev/mapper/rhel-swap"));
        assert!(es[1].args.contains("rd.lvm.lv=rhel/root"));
        assert_eq!(es[1].initrd, vec!["/initramfs-4.18.0-477.el8.x86_64.img"]);
    }

    #[test]
    fn words_and_arguments() {
        assert_eq!(
            words("linux\t/vmlinuz root='/dev/sda1' ro # c"),
            ["linux", "/vmlinuz", "root=/dev/sda1", "ro"]
        );
        assert_eq!(words("# all comment"), Vec::<String>::new());
        assert_eq!(arg("ro root=/dev/sda1 quiet root=UUID=1", "root"), Some("UUID=1"));
        assert_eq!(arg("ro myroot=/dev/sda1", "root"), None);
        assert_eq!(
            expand("${a}/$b-x", &[("a".into(), "1".into()), ("b".into(), "2".into())]),
            "1/2-x"
        );
    }
}
