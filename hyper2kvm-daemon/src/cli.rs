//! Command-line syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Convert VMware, Hyper-V, cloud and VirtualBox guests to KVM.
///
/// `hyper2kvm MANIFEST [--dry-run]` runs an Artifact Manifest (the same as `hyper2kvm run`).
#[derive(Debug, Parser)]
#[command(name = "hyper2kvm", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug with tool command lines, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log lines on stderr as text (for people, or the journal) or as one JSON object per line
    /// with the job and stage span fields.
    #[arg(long, value_enum, default_value_t, global = true, env = "HYPER2KVM_LOG_FORMAT")]
    pub log_format: crate::logger::LogFormat,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Direct mode: the manifest to run.
    #[command(flatten)]
    pub direct: RunArgs,
}

/// `hyper2kvm run MANIFEST` (and direct mode).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// An Artifact Manifest v1.0 (JSON or YAML).
    pub manifest: Option<PathBuf>,
    /// The same as the positional MANIFEST (the form HyperSDK's vSphere converter uses).
    #[arg(long = "manifest", value_name = "PATH", conflicts_with = "manifest")]
    pub manifest_flag: Option<PathBuf>,
    /// Check the manifest, inspect read-only and print the plan; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON on stdout instead of Output: lines.
    #[arg(long)]
    pub json: bool,
    /// Boot the converted guest in the validate stage.
    #[arg(long)]
    pub boot_test: bool,
    /// Cancel the job after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// The virtio drivers for Windows guests (as for `convert`).
    #[arg(long, value_name = "PATH", env = "VIRTIO_WIN")]
    pub virtio_win: Option<PathBuf>,
    /// Convert a Windows guest without virtio drivers with SATA disks and an e1000 NIC.
    #[arg(long)]
    pub allow_no_virtio: bool,
    /// Keep the blocks the guest's file systems do not use (deleted files) in the outputs
    /// instead of discarding them after the fixes.
    #[arg(long)]
    pub no_trim: bool,
    /// Write the KubeVirt objects too (`kubevirt`) or the libvirt domain only, where the
    /// manifest has no `output.target`.
    #[arg(long, value_parser = ["libvirt", "kubevirt"])]
    pub target: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Identify disk images, OVAs and OVFs from their content and report what they hold.
    Probe(ProbeArgs),
    /// Convert a disk image, OVA or OVF into qcow2 or raw files.
    Convert(Box<ConvertArgs>),
    /// Inspect the guest operating system on disk images, OVAs or OVFs (read-only).
    Inspect(InspectArgs),
    /// Run an Artifact Manifest: verify, inspect, fix, convert, validate, write the report.
    Run(RunArgs),
    /// Watch a queue directory for manifests and convert each (the systemd service).
    Daemon(DaemonArgs),
    /// Show what a running daemon is doing (its status file).
    Status(StatusArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(CompletionsArgs),
    /// Write the manual pages hyper2kvm.1 and hyper2kvm-daemon.8 into DIR (for packagers).
    #[command(hide = true)]
    Manpages(ManpagesArgs),
}

/// `hyper2kvm completions SHELL`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `hyper2kvm manpages DIR`.
#[derive(Debug, Args)]
pub struct ManpagesArgs {
    /// Where the pages go (created when missing).
    pub dir: PathBuf,
}

/// `hyper2kvm daemon`. Settings come from these flags, then the environment, then the config
/// file, then the defaults (docs/daemon.md lists every key).
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Where manifests arrive (WATCH_DIR).
    #[arg(long, value_name = "DIR")]
    pub watch_dir: Option<PathBuf>,
    /// Where results go (OUTPUT_DIR).
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// error, warn, info, debug or trace (LOG_LEVEL).
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// The instance name of hyper2kvm@NAME: its own directories and config file.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// Also serve the workflow directories under DIR (WORKFLOW_DIR; off by default).
    #[arg(long, value_name = "DIR")]
    pub workflow_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (/metrics) and /healthz on ADDR:PORT (METRICS_LISTEN, e.g.
    /// 127.0.0.1:9187; off by default).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics_listen: Option<String>,
    /// The config file (default /etc/hyper2kvm/hyper2kvm.conf or hyper2kvm-NAME.conf).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the status file goes (default $STATE_DIRECTORY, else /var/lib/hyper2kvm[/NAME]).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Seconds running jobs get to finish after SIGTERM before they are requeued.
    #[arg(long, value_name = "SECS", default_value_t = 80)]
    pub stop_timeout: u64,
}

/// `hyper2kvm status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The instance of hyper2kvm@NAME.
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// The daemon's state directory.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print the status file as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `hyper2kvm inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Inputs to inspect; each is one guest (an appliance's disks are inspected together).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `hyper2kvm probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Files to probe (disk images, OVA archives, OVF descriptors, directories with an OVF).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do not ask qemu-img for a second opinion.
    #[arg(long)]
    pub no_cross_check: bool,
    /// Do not verify OVA/OVF manifest checksums.
    #[arg(long)]
    pub no_verify: bool,
}

/// `hyper2kvm convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Disk image, OVA, OVF, or directory with an OVF.
    pub input: PathBuf,
    /// Output directory (created if missing).
    #[arg(short = 'o', long = "output-dir", value_name = "OUTDIR")]
    pub output_dir: PathBuf,
    /// Output format.
    #[arg(long, default_value = "qcow2", value_parser = ["qcow2", "raw"])]
    pub format: String,
    /// Compress qcow2 clusters, at LEVEL 1-9 (default 6; 1-3 use zstd, 4-9 zlib).
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, require_equals = true, default_missing_value = "6", value_parser = clap::value_parser!(u8).range(1..=9))]
    pub compress: Option<u8>,
    /// Base name of the outputs (default: the VM name, or the input's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace outputs that already exist.
    #[arg(long)]
    pub overwrite: bool,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do not verify OVA/OVF manifest checksums.
    #[arg(long)]
    pub no_verify: bool,
    /// Convert only: no guest inspection or fixes.
    #[arg(long)]
    pub no_fix: bool,
    /// Inspect and print the planned changes; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How fstab device names are rewritten.
    #[arg(long, default_value = "stabilize-all", value_parser = ["stabilize-all", "bypath-only", "noop"])]
    pub fstab_mode: String,
    /// Keep FILE.hyper2kvm.bak copies of the files changed in the guest.
    #[arg(long)]
    pub backup: bool,
    /// Always rebuild an initramfs that lacks virtio with the guest's own tool, instead of
    /// appending the drivers to a Debian/Ubuntu (initramfs-tools) image.
    #[arg(long)]
    pub rebuild_initramfs: bool,
    /// A JSON file holding a manifest-style `configuration` object (users, services,
    /// hostname, systemd-networkd files) to apply in the guest.
    #[arg(long, value_name = "FILE")]
    pub configuration: Option<std::path::PathBuf>,
    /// The virtio drivers for Windows guests: the virtio-win ISO, an unpacked or mounted one,
    /// or the virtio-win RPM's tree [default: /usr/share/virtio-win/virtio-win.iso, then
    /// /usr/share/virtio-win].
    #[arg(long, value_name = "PATH", env = "VIRTIO_WIN")]
    pub virtio_win: Option<std::path::PathBuf>,
    /// Convert a Windows guest for which no virtio drivers are found with SATA disks and an
    /// e1000 NIC, instead of refusing it.
    #[arg(long)]
    pub allow_no_virtio: bool,
    /// Keep the blocks the guest's file systems do not use (deleted files) in the outputs
    /// instead of discarding them after the fixes.
    #[arg(long)]
    pub no_trim: bool,
    /// The libvirt domain and validation.
    #[command(flatten)]
    pub domain: DomainArgs,
}

/// The libvirt domain written beside the disks, its definition in libvirt, and validation.
#[derive(Debug, Args)]
pub struct DomainArgs {
    /// Write no NAME.xml domain.
    #[arg(long)]
    pub no_domain: bool,
    /// What to write beside the disks: libvirt (NAME.xml), or kubevirt (NAME.xml and
    /// NAME.kubevirt.yaml: a KubeVirt VirtualMachine and one CDI DataVolume per disk). For
    /// manifests, `output.target` wins.
    #[arg(long, default_value = "libvirt", value_parser = ["libvirt", "kubevirt"])]
    pub target: String,
    /// Kubernetes namespace of the KubeVirt objects (default: none written).
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Where the KubeVirt DataVolumes get their data: upload, or pvc:NAMESPACE (a clone of
    /// the PVC of the same name there).
    #[arg(long, default_value = "upload", value_name = "SOURCE")]
    pub datavolume_source: String,
    /// libvirt network the NICs join [default: default]. Given explicitly, a source without
    /// network adapters gets one NIC there (otherwise it gets none).
    #[arg(long, value_name = "NAME")]
    pub network: Option<String>,
    /// Host bridge the NICs join instead of a network (given, like --network, a source without
    /// network adapters gets one NIC).
    #[arg(long, env = "LIBVIRT_BRIDGE", value_name = "BRIDGE")]
    pub bridge: Option<String>,
    /// NICs on the source network SRC join the libvirt network DST (`SRC=bridge:BR` for a
    /// host bridge); repeat for each network. NICs on unmapped networks join --network, with
    /// a warning.
    #[arg(long = "network-map", value_name = "SRC=DST")]
    pub network_map: Vec<String>,
    /// Disk bus.
    #[arg(long, default_value = "virtio-blk", value_parser = ["virtio-blk", "virtio-scsi", "sata"])]
    pub disk_bus: String,
    /// Remote display (listening on 127.0.0.1).
    #[arg(long, default_value = "vnc", value_parser = ["vnc", "spice", "none"])]
    pub graphics: String,
    /// Domain type: kvm, or qemu for hosts without KVM.
    #[arg(long, default_value = "kvm", value_parser = ["kvm", "qemu"])]
    pub domain_type: String,
    /// Define the domain in libvirt.
    #[arg(long, env = "LIBVIRT_INTEGRATION")]
    pub define: bool,
    /// libvirt connection URI for --define.
    #[arg(long, env = "LIBVIRT_URI", value_name = "URI")]
    pub libvirt_uri: Option<String>,
    /// Storage pool (a directory pool) holding the output directory, refreshed on --define.
    #[arg(long, env = "LIBVIRT_POOL", value_name = "POOL")]
    pub pool: Option<String>,
    /// Start the defined domain when the host boots.
    #[arg(long, env = "LIBVIRT_AUTOSTART")]
    pub autostart: bool,
    /// Skip `qemu-img check` of the outputs.
    #[arg(long)]
    pub no_check: bool,
    /// Boot the converted guest (headless, bounded) before the outputs are renamed into place.
    #[arg(long)]
    pub boot_test: bool,
    /// Console text that means the guest booted.
    #[arg(long, default_value = "login:", value_name = "TEXT")]
    pub boot_marker: String,
    /// Seconds the boot test may take.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub boot_timeout: u64,
}

impl RunArgs {
    /// The manifest, given positionally or with `--manifest`.
    pub fn manifest_path(&self) -> Option<&PathBuf> {
        self.manifest.as_ref().or(self.manifest_flag.as_ref())
    }
}
