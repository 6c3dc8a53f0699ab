"""The Python binding probes real images and raises the right exception classes."""

import os

import pytest

import hyper2kvm


def test_probe_reports_format_and_size(vmdk):
    result = hyper2kvm.probe(vmdk)
    assert isinstance(result, hyper2kvm.ProbeResult)
    assert (result.type, result.format, result.virtual_size) == ("disk", "vmdk", 64 << 20)
    assert result.to_dict()["format"] == "vmdk"
    assert result["type"] == "disk"
    assert result["format"] == "vmdk"
    assert result["subformat"] == "monolithicSparse"
    assert result["virtual_size"] == 64 << 20
    assert result["cross_check"]["agrees"] is True


def test_missing_file_is_file_not_found(tmp_path):
    missing = tmp_path / "missing.vhd"
    with pytest.raises(FileNotFoundError) as info:
        hyper2kvm.probe(missing)
    assert isinstance(info.value, hyper2kvm.NotFoundError)
    assert isinstance(info.value, hyper2kvm.Error)
    assert info.value.kind == "not_found"
    assert info.value.path == str(missing)


def test_bad_input_has_its_own_class(tmp_path):
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"")
    with pytest.raises(hyper2kvm.InvalidInputError, match="empty file"):
        hyper2kvm.probe(str(empty))


def test_directory_without_ovf_is_invalid(tmp_path):
    with pytest.raises(hyper2kvm.InvalidInputError, match="is a directory"):
        hyper2kvm.probe(os.fspath(tmp_path))


def test_version():
    assert hyper2kvm.__version__.count(".") == 2
