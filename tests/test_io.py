"""synesthesia.io: round trips, atomicity and clear errors on damaged files."""

from __future__ import annotations

import json

import pytest
import torch

from synesthesia.io import (
    atomic_folder,
    atomic_write_bytes,
    atomic_write_json,
    load_pretrained,
    recover_folder,
    save_pretrained,
)


def _state() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"w": torch.randn(3, 4, generator=g), "b": torch.arange(4), "s": torch.tensor(2.5)}


def test_save_load_round_trip(tmp_path):
    state = _state()
    state["tied"] = state["w"]  # shared storage must not break safetensors
    save_pretrained(tmp_path / "m", state, {"kind": "x", "sizes": [1, 2]})
    loaded, config = load_pretrained(tmp_path / "m")
    assert config == {"kind": "x", "sizes": [1, 2]}
    assert set(loaded) == set(state)
    for k, v in state.items():
        assert torch.equal(loaded[k], v) and loaded[k].dtype == v.dtype


def test_save_pretrained_leaves_other_files_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    save_pretrained(tmp_path, _state(), {})
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_pretrained(tmp_path / "nowhere")
    save_pretrained(tmp_path / "m", _state(), {})
    (tmp_path / "m/model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        load_pretrained(tmp_path / "m")
    (tmp_path / "m/config.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_pretrained(tmp_path / "m")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_file_names_the_file(tmp_path, name, damage):
    folder = tmp_path / "m"
    save_pretrained(folder, _state(), {"kind": "x"})
    path = folder / name
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2] if damage == "truncate" else b"\x07not it" * 5)
    with pytest.raises(ValueError, match=rf"{name}.*(corrupted|truncated)"):
        load_pretrained(folder)


def test_config_must_be_an_object(tmp_path):
    save_pretrained(tmp_path, _state(), {})
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_pretrained(tmp_path)
    with pytest.raises(ValueError, match="config must be a dict"):
        save_pretrained(tmp_path, _state(), [1])  # type: ignore[arg-type]


def test_atomic_write_failure_keeps_old_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(ValueError, match="a.json"):
        atomic_write_json(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_folder_replaces_on_success_only(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_folder(target) as tmp:
        (tmp / "one").write_text("1")
    assert [p.name for p in target.iterdir()] == ["one"]
    with pytest.raises(RuntimeError), atomic_folder(target) as tmp:
        (tmp / "two").write_text("2")
        raise RuntimeError("crash while writing")
    assert [p.name for p in target.iterdir()] == ["one"]  # the old folder survives
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folder left
    with atomic_folder(target) as tmp:
        (tmp / "three").write_text("3")
    assert [p.name for p in target.iterdir()] == ["three"]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_recover_after_crash_between_renames(tmp_path):
    # A crash after moving the old folder aside but before the new one arrived.
    old = tmp_path / ".ckpt.old-abc"
    old.mkdir()
    (old / "config.json").write_text("{}")
    stale = tmp_path / ".ckpt.tmp-xyz"
    stale.mkdir()
    assert recover_folder(tmp_path / "ckpt") == tmp_path / "ckpt"
    assert (tmp_path / "ckpt/config.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
