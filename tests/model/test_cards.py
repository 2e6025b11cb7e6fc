"""Model cards: the YAML under model/presets is the source of every preset; mistakes are named."""

from pathlib import Path

import pytest
import yaml

from cosmos_ros.model.cards import CardError, load_cards, preset_directories, preset_from_card, read_card
from cosmos_ros.model.config import PRESETS, get_preset, model_info

CARDS = Path(__file__).resolve().parents[2] / "model" / "presets"


def card(name: str) -> dict:
    return yaml.safe_load((CARDS / f"{name}.yaml").read_text())


def test_every_preset_comes_from_a_card_in_the_source_tree():
    assert {read_card(p).name for p in CARDS.glob("*.yaml")} == set(PRESETS)
    assert CARDS.resolve() in [d.resolve() for d in preset_directories()]


@pytest.mark.parametrize("name", ["cosmos-reason1-7b", "cosmos-reason1-56b", "tiny-dense", "tiny-hybrid"])
def test_a_card_reads_back_as_the_registered_preset(name):
    assert preset_from_card(card(name)) == PRESETS[name]


def test_an_edited_card_file_is_a_preset_by_path(tmp_path):
    edited = card("tiny-hybrid") | {"name": "my-hybrid"}
    edited["text"]["layers"] = "M*-"
    path = tmp_path / "my-hybrid.yaml"
    path.write_text(yaml.safe_dump(edited))
    preset = get_preset(str(path))
    assert preset.name == "my-hybrid" and preset.text.layer_counts() == {"mamba": 1, "mlp": 1, "attention": 1}
    assert model_info(path)["text_layers"] == 3


def test_preset_path_environment_adds_cards_that_take_precedence(tmp_path, monkeypatch):
    (tmp_path / "tiny-dense.yaml").write_text(
        yaml.safe_dump(card("tiny-dense") | {"tie_word_embeddings": True})
    )
    monkeypatch.setenv("COSMOS_ROS_PRESET_PATH", str(tmp_path))
    presets = load_cards()
    assert presets["tiny-dense"].tie_word_embeddings is True
    assert "cosmos-reason1-56b" in presets


def test_an_unknown_key_is_named_with_the_file_and_the_allowed_keys(tmp_path):
    bad = card("tiny-dense")
    bad["text"]["hidden"] = 64
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(CardError, match=r"bad.yaml: text: unknown keys \['hidden'\]; allowed: .*hidden_size"):
        read_card(path)


def test_an_unknown_family_is_refused():
    with pytest.raises(CardError, match="family must be one of \\['dense', 'hybrid', 'qwen3_vl'\\]"):
        preset_from_card(card("tiny-dense") | {"family": "moe"})


def test_a_missing_section_is_named():
    incomplete = card("tiny-hybrid")
    del incomplete["vision"]
    with pytest.raises(CardError, match="vision"):
        preset_from_card(incomplete)


def test_an_inconsistent_card_is_refused_with_the_reason():
    bad = card("tiny-dense")
    bad["text"]["mrope_section"] = [4, 4, 4]
    with pytest.raises(CardError, match="mrope_section"):
        preset_from_card(bad, "bad card")


def test_two_cards_with_one_name_in_a_folder_are_refused(tmp_path):
    for file in ("a.yaml", "b.yaml"):
        (tmp_path / file).write_text(yaml.safe_dump(card("tiny-dense")))
    with pytest.raises(CardError, match="defined twice"):
        load_cards([tmp_path])


def test_a_card_that_is_not_yaml_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(CardError, match="broken.yaml"):
        read_card(path)
