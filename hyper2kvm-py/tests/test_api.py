"""The Python API over real images and manifests: conversion with progress, callbacks that
raise, Ctrl-C, the GIL released during work, manifests (load, dry run, run, batch), errors,
and the wheel installed into a fresh virtual environment."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import hyper2kvm
from conftest import write_manifest


def leftovers(out: Path):
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


def test_convert_reports_progress_and_outputs(tmp_path, vmdk):
    out = tmp_path / "out"
    calls = []
    r = hyper2kvm.convert(vmdk, out, fix=False, progress=lambda *a: calls.append(a))
    assert isinstance(r, hyper2kvm.ConvertResult)
    assert r.outputs == [out / "disk.qcow2"] and r.outputs[0].is_file()
    assert r.domain_xml == (out / "disk.xml").resolve() or r.domain_xml == out / "disk.xml"
    assert any(stage == "convert" for stage, _, _, _ in calls), calls
    assert all(isinstance(d, int) and isinstance(t, int) for _, _, d, t in calls)
    assert r.to_dict()["outputs"][0]["format"] == "qcow2"


def test_the_kubevirt_target_writes_objects_that_validate(tmp_path, vmdk):
    out = tmp_path / "out"
    r = hyper2kvm.convert(vmdk, out, fix=False, target="kubevirt", namespace="vms")
    assert r.kubevirt_yaml is not None and r.kubevirt_yaml.name == "disk.kubevirt.yaml"
    import yaml

    docs = list(yaml.safe_load_all(r.kubevirt_yaml.read_text()))
    assert [d["kind"] for d in docs] == ["VirtualMachine", "DataVolume"]
    assert all(d["metadata"]["namespace"] == "vms" for d in docs)
    assert docs[1]["spec"]["source"] == {"upload": {}}
    assert docs[1]["spec"]["storage"]["resources"]["requests"]["storage"] == "64Mi"
    validate = Path(__file__).resolve().parents[2] / "tests" / "kubernetes" / "validate.py"
    v = subprocess.run([sys.executable, str(validate), str(r.kubevirt_yaml)], capture_output=True)
    assert v.returncode == 0, v.stdout.decode() + v.stderr.decode()
    assert hyper2kvm.convert(vmdk, tmp_path / "plain", fix=False).kubevirt_yaml is None
    for bad in ({"target": "openstack"}, {"target": "kubevirt", "namespace": "Not_A_Label"},
                {"target": "kubevirt", "datavolume_source": "http://x"}):
        with pytest.raises(ValueError):
            hyper2kvm.convert(vmdk, tmp_path / "bad", fix=False, **bad)
    assert not (tmp_path / "bad").exists(), "a refused call wrote nothing"
    m = write_manifest(tmp_path, output={"directory": "mout"})
    done = hyper2kvm.run_manifest(m, target="kubevirt")
    assert done.success and (tmp_path / "mout" / "web01.kubevirt.yaml").is_file()


def test_a_progress_callback_that_raises_stops_the_job(tmp_path, big_raw):
    out = tmp_path / "out"

    def progress(stage, item, done, total):
        if stage == "convert" and done > 0:
            raise ValueError("stop here")

    with pytest.raises(ValueError, match="stop here"):
        hyper2kvm.convert(big_raw, out, compress=9, fix=False, progress=progress)
    assert leftovers(out) == [], "nothing left behind"


def test_the_gil_is_released_while_converting(tmp_path, big_raw):
    out = tmp_path / "out"
    result = {}
    seen = []

    def work():
        result["r"] = hyper2kvm.convert(
            big_raw, out, compress=9, fix=False, progress=lambda *a: seen.append(a)
        )

    t = threading.Thread(target=work)
    t.start()
    spins = 0
    started = time.monotonic()
    while t.is_alive():
        spins += 1  # pure Python: runs only while the conversion does not hold the GIL
    t.join()
    elapsed = time.monotonic() - started
    assert result["r"].outputs[0].is_file()
    assert seen, "the callback ran on the worker"
    assert elapsed > 0.5, f"too fast to tell ({elapsed:.2f} s)"
    assert spins > 100_000, f"the main thread ran only {spins} loops in {elapsed:.1f} s"


def test_ctrl_c_cancels_a_running_conversion_cleanly(tmp_path, big_raw):
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os, signal, hyper2kvm
        # Python's own Ctrl-C handler, even when started with SIGINT ignored (as a background
        # job of a non-interactive shell is: CI started that way gets no KeyboardInterrupt).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        sent = []
        def progress(stage, item, done, total):
            if stage == "convert" and done > 0 and not sent:
                sent.append(1)
                os.kill(os.getpid(), signal.SIGINT)
        try:
            hyper2kvm.convert({str(big_raw)!r}, {str(out)!r}, compress=9, fix=False, progress=progress)
            print("finished")
        except KeyboardInterrupt:
            print("interrupted")
        """
    )
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "interrupted", p.stdout + p.stderr
    assert leftovers(out) == [], "the cancelled conversion removed its temporary files"


def test_errors_have_their_classes(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        hyper2kvm.convert(tmp_path / "missing.vmdk", tmp_path / "out")
    assert isinstance(info.value, hyper2kvm.NotFoundError) and info.value.kind == "not_found"
    bad = tmp_path / "bad.json"
    bad.write_text('{"manifest_version": "2.0", "disks": []}')
    with pytest.raises(hyper2kvm.InvalidInputError, match="manifest_version") as info:
        hyper2kvm.run_manifest(bad)
    assert info.value.path == str(bad)
    with pytest.raises(hyper2kvm.InvalidInputError, match="disks: must list"):
        hyper2kvm.Manifest.load(bad)
    with pytest.raises(ValueError):
        hyper2kvm.convert(tmp_path / "x", tmp_path / "out", compress=12)
    with pytest.raises(TypeError):
        hyper2kvm.inspect()


def test_manifest_load_dry_run_and_run(tmp_path, vmdk):
    m = write_manifest(tmp_path, output={"directory": "out"})
    loaded = hyper2kvm.Manifest.load(m)
    assert (loaded.kind, loaded.vm_name) == ("vm", "web01")
    assert loaded.disks[0]["local_path"] == str(vmdk)
    plan = hyper2kvm.run_manifest(m, dry_run=True)
    assert isinstance(plan, hyper2kvm.ManifestPlan)
    assert tmp_path / "out" / "web01.qcow2" in plan.outputs
    assert not (tmp_path / "out").exists(), "a dry run writes nothing"
    stages = []
    r = hyper2kvm.run_manifest(m, progress=lambda s, *a: stages.append(s))
    assert isinstance(r, hyper2kvm.ManifestResult) and r.success and r.kind == "vm"
    assert tmp_path / "out" / "web01.qcow2" in r.outputs
    assert all(p.is_file() for p in r.outputs)
    assert r.report["pipeline"]["success"] is True
    assert "convert" in stages


def test_batch_manifests(tmp_path, vmdk):
    import json

    write_manifest(tmp_path, "a")
    write_manifest(tmp_path, "b")
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({
        "batch_version": "1.0", "batch_metadata": {"batch_id": "wave"},
        "vms": [{"manifest": "a.json", "id": "a"}, {"manifest": "b.json", "id": "b", "priority": 3}],
    }))
    loaded = hyper2kvm.Manifest.load(batch)
    assert loaded.kind == "batch" and [v["id"] for v in loaded.vms] == ["a", "b"]
    r = hyper2kvm.run_manifest(batch)
    assert r.success and r.kind == "batch"
    assert tmp_path / "output" / "a" / "a.qcow2" in r.outputs
    assert r.report["batch_id"] == "wave"


def test_inspect_a_disk_without_an_os(vmdk):
    [r] = hyper2kvm.inspect(vmdk)
    assert isinstance(r, hyper2kvm.InspectResult)
    assert r.guest is None and r.input.format == "vmdk"


def test_the_wheel_installs_into_a_fresh_venv(tmp_path, vmdk):
    root = Path(__file__).resolve().parents[2]
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "maturin", "build", "--release", "--quiet",
         "-m", str(root / "hyper2kvm-py" / "Cargo.toml"), "-o", str(wheels)],
        check=True, cwd=root,
    )
    [wheel] = list(wheels.glob("hyper2kvm-*.whl"))
    assert "abi3" in wheel.name, wheel.name
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-index", str(wheel)], check=True)
    code = (
        "import hyper2kvm, sys; r = hyper2kvm.probe(sys.argv[1]);"
        "print(hyper2kvm.__version__, r.format, hyper2kvm.__file__)"
    )
    out = subprocess.run([str(py), "-c", code, str(vmdk)], check=True, capture_output=True,
                         text=True, cwd=tmp_path).stdout.split()
    assert out[0] == hyper2kvm.__version__ and out[1] == "vmdk"
    assert out[2].startswith(str(venv)), "imported from the fresh venv"


def test_every_error_kind_has_its_own_class():
    from hyper2kvm import _hyper2kvm

    table = _hyper2kvm.error_classes()
    codes = [code for _, _, code in table]
    assert codes == list(range(1, len(table) + 1)), table
    classes = [cls for _, cls, _ in table]
    assert len(set(classes)) == len(classes), f"two kinds share a class: {table}"
    for kind, cls, _ in table:
        klass = getattr(hyper2kvm, cls)
        assert issubclass(klass, hyper2kvm.Error), cls
        assert klass("m", kind).kind == kind
