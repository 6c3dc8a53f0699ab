#!/usr/bin/env bash
# Checks what packaging/ ships: the systemd units pass `systemd-analyze verify` without a
# single warning, and the RPMs build and hold the expected files with the expected owners and
# modes, scriptlets and dependencies. Run by `make test` after `make build`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "test-packaging: FAIL: $*" >&2; exit 1; }

# 1. Units: systemd-analyze needs the ExecStart binary to exist; point it at ours.
bin="$PWD/target/release/hyper2kvm"
[[ -x $bin ]] || fail "$bin missing (run make build)"
for u in hyper2kvm.service hyper2kvm@.service hyper2kvm.target; do
  sed "s|/usr/bin/hyper2kvm|$bin|" "packaging/systemd/$u" > "$work/$u"
done
out=$(cd "$work" && systemd-analyze verify hyper2kvm.service hyper2kvm@vsphere.service hyper2kvm.target 2>&1) \
  || fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify warned: $out"
# A unit with a mistake must be caught the same way (the check can fail).
sed 's/^KillMode=mixed/KillMode=mixxed/' "$work/hyper2kvm.service" > "$work/broken.service"
out=$(cd "$work" && systemd-analyze verify broken.service 2>&1 || true)
[[ $out == *"kill mode"* ]] || fail "a broken unit was not reported: $out"
# hyperctl daemon -op status reads systemctl status (Main PID, Active:, our STATUS= text): both
# units must be Type=notify with the notifications accepted from the main process only.
for u in hyper2kvm.service hyper2kvm@.service; do
  for key in Type=notify NotifyAccess=main WatchdogSec=60s; do
    grep -qx "$key" "packaging/systemd/$u" || fail "$u lacks $key"
  done
done
grep -q -- '--instance=%i' packaging/systemd/hyper2kvm@.service || fail "the template does not pass --instance"
echo "test-packaging: units verified"

# 2. RPMs.
packaging/rpm/build.sh --clean --version 1.2.3 --release 4 --topdir "$work/rpm" > "$work/built"
rpms=$(cat "$work/built")
main=$(grep '/hyper2kvm-1.2.3-4\.x86_64\.rpm$' <<<"$rpms") || fail "no hyper2kvm RPM in: $rpms"
devel=$(grep '/hyper2kvm-devel-1.2.3-4\.x86_64\.rpm$' <<<"$rpms") || fail "no -devel RPM in: $rpms"
daemon=$(grep '/hyper2kvm-daemon-1.2.3-4\.noarch\.rpm$' <<<"$rpms") || fail "no -daemon RPM in: $rpms"
files() { rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$1" | grep -v ' /usr/share/doc/' | sort; }
expect() { # expect RPM "<perms> <owner> <path>"...
  local rpm=$1; shift
  local got; got=$(files "$rpm")
  local want; want=$(printf '%s\n' "$@" | sort)
  [[ $got == "$want" ]] || fail "$(basename "$rpm") files differ:
--- want
$want
--- got
$got"
}
expect "$main" \
  "-rwxr-xr-x root:root /usr/bin/hyper2kvm" \
  "-rwxr-xr-x root:root /usr/lib64/libhyper2kvm.so.1" \
  "-rw-r--r-- root:root /usr/share/man/man1/hyper2kvm.1" \
  "-rw-r--r-- root:root /usr/share/bash-completion/completions/hyper2kvm" \
  "-rw-r--r-- root:root /usr/share/zsh/site-functions/_hyper2kvm" \
  "-rw-r--r-- root:root /usr/share/fish/vendor_completions.d/hyper2kvm.fish"
expect "$devel" \
  "-rw-r--r-- root:root /usr/include/hyper2kvm.h" \
  "lrwxrwxrwx root:root /usr/lib64/libhyper2kvm.so" \
  "-rw-r--r-- root:root /usr/lib64/pkgconfig/hyper2kvm.pc"
expect "$daemon" \
  "drwxr-xr-x root:root /etc/hyper2kvm" \
  "-rw-r--r-- root:root /etc/hyper2kvm/hyper2kvm.conf.example" \
  "-rw-r--r-- root:root /etc/hyper2kvm/hyper2kvm-vsphere.conf.example" \
  "-rw-r--r-- root:root /etc/hyper2kvm/hyper2kvm-aws.conf.example" \
  "-rw-r--r-- root:root /usr/share/man/man8/hyper2kvm-daemon.8" \
  "-rw-r--r-- root:root /usr/lib/systemd/system/hyper2kvm.service" \
  "-rw-r--r-- root:root /usr/lib/systemd/system/hyper2kvm@.service" \
  "-rw-r--r-- root:root /usr/lib/systemd/system/hyper2kvm.target" \
  "-rw-r--r-- root:root /usr/lib/sysusers.d/hyper2kvm.conf" \
  "-rw-r--r-- root:root /usr/lib/tmpfiles.d/hyper2kvm.conf" \
  "drwxr-xr-x hyper2kvm:hyper2kvm /var/lib/hyper2kvm" \
  "drwxrwsr-x hyper2kvm:hyper2kvm /var/lib/hyper2kvm/queue" \
  "drwxr-xr-x hyper2kvm:hyper2kvm /var/lib/hyper2kvm/output" \
  "drwxr-x--- hyper2kvm:hyper2kvm /var/log/hyper2kvm" \
  "drwxr-x--- hyper2kvm:hyper2kvm /var/cache/hyper2kvm"
grep -qx 'hyper2kvm = 1.2.3-4' <<<"$(rpm -qp --requires "$daemon")" || fail "-daemon does not require hyper2kvm = 1.2.3-4"
grep -q '^hyper2kvm(x86-64) = 1.2.3-4$' <<<"$(rpm -qp --requires "$devel")" || fail "-devel does not require the library package"
grep -qx 'libhyper2kvm.so.1()(64bit)' <<<"$(rpm -qp --provides "$main")" || fail "the soname libhyper2kvm.so.1 is not provided"
grep -q hyper2kvm-vsphere.conf.example <<<"$(rpm -qp --configfiles "$daemon")" || fail "config examples are not %config"
scripts=$(rpm -qp --scripts "$daemon")
for want in "useradd -r -g hyper2kvm" "usermod -a -G" "preset hyper2kvm.service hyper2kvm.target" \
            "disable --now hyper2kvm.service" "try-restart hyper2kvm.service" "systemd-tmpfiles --create"; do
  [[ $scripts == *"$want"* ]] || fail "-daemon scriptlets lack: $want"
done
pc=$(rpm2cpio "$devel" | (cd "$work" && cpio -id --quiet './usr/lib64/pkgconfig/hyper2kvm.pc') && cat "$work/usr/lib64/pkgconfig/hyper2kvm.pc")
[[ $pc == *"Version: 1.2.3"* && $pc == *"libdir=/usr/lib64"* ]] || fail "hyper2kvm.pc: $pc"
# The manual pages render, and the completions are what the shells can load.
(cd "$work" && rpm2cpio "$main" | cpio -id --quiet && rpm2cpio "$daemon" | cpio -id --quiet)
page=$(MANWIDTH=80 man -l "$work/usr/share/man/man1/hyper2kvm.1" 2>&1) || fail "man -l hyper2kvm.1: $page"
for want in "hyper2kvm(1)" "SUBCOMMANDS" "hyper2kvm-convert" "--log-format"; do
  [[ $page == *"$want"* ]] || fail "hyper2kvm(1) does not show $want"
done
page=$(MANWIDTH=80 man -l "$work/usr/share/man/man8/hyper2kvm-daemon.8" 2>&1) || fail "man -l hyper2kvm-daemon.8: $page"
for want in "hyper2kvm-daemon(8)" "--metrics-listen" "--stop-timeout" "METRICS_LISTEN"; do
  [[ $page == *"$want"* ]] || fail "hyper2kvm-daemon(8) does not show $want"
done
bash -n "$work/usr/share/bash-completion/completions/hyper2kvm" || fail "bash completion does not parse"
got=$(bash -c "source '$work/usr/share/bash-completion/completions/hyper2kvm'; COMP_WORDS=(hyper2kvm dae); COMP_CWORD=1; _hyper2kvm hyper2kvm dae hyper2kvm; echo \"\${COMPREPLY[*]}\"")
[[ $got == *daemon* ]] || fail "bash completion of 'hyper2kvm dae' gave: $got"
grep -q '#compdef hyper2kvm' "$work/usr/share/zsh/site-functions/_hyper2kvm" || fail "zsh completion lacks #compdef"
grep -q "complete -c hyper2kvm" "$work/usr/share/fish/vendor_completions.d/hyper2kvm.fish" || fail "fish completion lacks complete -c"
echo "test-packaging: man pages render, completions load"
echo "test-packaging: RPMs built and checked: $(basename "$main") $(basename "$devel") $(basename "$daemon")"

# 4. Kubernetes: the kustomization and the Job template pass the published schemas (strict:
#    no unknown fields) and kubectl create --dry-run=client; a misspelt field is caught; the
#    pods' resources are the systemd unit's MemoryMax/CPUQuota. (The ConfigMap's config file
#    is loaded by the daemon's parser in the unit test the_packaged_examples_are_valid.)
py=.venv/bin/python
$py tests/kubernetes/validate.py packaging/kubernetes packaging/kubernetes/job.yaml \
  > "$work/k8s.out" 2>&1 || { cat "$work/k8s.out"; fail "packaging/kubernetes does not validate"; }
sed 's/livenessProbe:/livenesProbe:/' packaging/kubernetes/deployment.yaml > "$work/typo.yaml"
if $py tests/kubernetes/validate.py "$work/typo.yaml" > "$work/typo.out" 2>&1; then
  fail "a misspelt field (livenesProbe) was not caught"
fi
mem=$(sed -n 's/^MemoryMax=//p' packaging/systemd/hyper2kvm.service)
cpu=$(sed -n 's/^CPUQuota=\([0-9]*\)%$/\1/p' packaging/systemd/hyper2kvm.service)
$py - "$mem" "$cpu" <<'PY' || fail "pod resources differ from the unit's MemoryMax/CPUQuota"
import sys, yaml
mem, cpu = sys.argv[1], int(sys.argv[2])
want = {"memory": mem.replace("G", "Gi"), "cpu": str(cpu // 100)}
for f, kind in [("deployment.yaml", "Deployment"), ("job.yaml", "Job")]:
    doc = yaml.safe_load(open("packaging/kubernetes/" + f))
    for c in doc["spec"]["template"]["spec"]["containers"]:
        for part in ("requests", "limits"):
            got = {k: str(c["resources"][part][k]) for k in want}
            assert got == want, f"{f} {part}: {got} != {want}"
PY
echo "test-packaging: packaging/kubernetes validates; resources match the unit"
