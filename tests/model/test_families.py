"""The family registry: one table decides family, classes and support for presets and checkpoints."""

import dataclasses

import pytest

from cosmos_ros.model.checkpoint import SUPPORTED_MODEL_TYPES, create_tiny_checkpoint
from cosmos_ros.model.config import PRESETS, get_preset, model_class
from cosmos_ros.model.families import FAMILIES, MODEL_TYPES, Family, family_of, resolve_source

PARTS = [f.name for f in dataclasses.fields(Family) if isinstance(getattr(FAMILIES["dense"], f.name), str)]
ENTRY_PARTS = [p for p in PARTS if ":" in getattr(FAMILIES["dense"], p)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("part", ENTRY_PARTS)
def test_every_entry_names_an_importable_object(family, part):
    assert callable(FAMILIES[family].load(part))


def test_a_part_a_family_lacks_is_named_when_asked_for():
    unexportable = dataclasses.replace(FAMILIES["dense"], name="new", export_jobs=None, exportable=False)
    with pytest.raises(ValueError, match=r"the new family \(Qwen2.5-VL.*has no export_jobs"):
        unexportable.load("export_jobs")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_a_presets_family_is_its_cards_and_its_model_class_the_familys(name):
    preset = get_preset(name)
    family = family_of(preset)
    assert isinstance(preset, family.load("card"))
    assert model_class(preset) is family.load("model_class")
    assert family_of(preset.to_hf_config()) is family  # the HF config it builds says the same
    assert family_of({"model_type": family.model_type}) is family_of(family.name) is family


def test_the_supported_model_types_are_the_registrys():
    assert set(SUPPORTED_MODEL_TYPES) == set(MODEL_TYPES) == {"qwen2_5_vl", "internvl", "qwen3_vl"}


def test_an_unknown_family_or_model_type_names_the_supported_ones():
    with pytest.raises(ValueError, match="qwen2_5_vl.*internvl"):
        family_of({"model_type": "llava"})
    with pytest.raises(ValueError, match="dense, hybrid, qwen3_vl"):
        family_of("mixture")


def test_one_resolver_tells_presets_from_directories(tmp_path):
    assert resolve_source("tiny-dense") == ("preset", PRESETS["tiny-dense"])
    assert resolve_source(PRESETS["tiny-hybrid"]) == ("preset", PRESETS["tiny-hybrid"])
    assert resolve_source(tmp_path / "ckpt") == ("directory", tmp_path / "ckpt")
    assert resolve_source(str(tmp_path)) == ("directory", tmp_path)


@pytest.mark.parametrize("preset", ["tiny-dense", "tiny-hybrid", "cosmos-reason2-tiny"])
def test_a_checkpoints_processor_is_its_familys(preset, tmp_path):
    from cosmos_ros.training.data import load_processor

    path = create_tiny_checkpoint(tmp_path / preset, seed=0, preset=preset)
    family = family_of(get_preset(preset))
    processor = load_processor(path)
    reference = family.load("preset_processor")(get_preset(preset), processor.tokenizer)
    assert type(processor) is type(reference)
    saved, built = processor.media.to_hf_dict(), reference.media.to_hf_dict()
    saved.pop("total_pixels", None)  # a checkpoint without a clip budget of its own takes the 7B card's
    assert saved == built


def test_a_family_the_registry_does_not_mark_trainable_is_refused_by_training():
    from cosmos_ros.training.sft import load_trainable

    assert [f.name for f in FAMILIES.values() if f.trainable] == ["dense", "qwen3_vl"]
    with pytest.raises(ValueError, match=r"supports the families dense \(Qwen2.5-VL.*qwen3_vl.*'tiny-hybrid' is hybrid"):
        load_trainable("tiny-hybrid")
