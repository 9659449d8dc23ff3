"""Fine-tuning an ensemble: every member is fine-tuned on the same label sets; a new ensemble version lists them."""

from __future__ import annotations

from hubseg.models.ensemble import EnsembleModel, is_ensemble
from hubseg.models.testing import make_ensemble
from hubseg.training import train
from hubseg.training.sources import ImageFolderSource

from tests.support.training import tiny_config


def test_fine_tuning_an_ensemble_fine_tunes_every_member(image_folder, registry):
    source = ImageFolderSource(image_folder, pixel_size_um=1.0)
    members = [train(tiny_config(epochs=1, seed=seed, family=f"member{seed}"), [source], registry)
               for seed in (0, 1)]
    make_ensemble(registry, members, name="team-v1")
    messages = []
    card = train(tiny_config(base_model="team-v1", epochs=1, family=None), [source], registry,
                 progress=lambda done, total, message: messages.append(message))
    assert card.name == "team-v2" and is_ensemble(card)
    tuned = [m["name"] for m in card.architecture["members"]]
    assert tuned == ["member0-v2", "member1-v2"]  # each member a new version of its own family
    for name, base in zip(tuned, members):
        member = registry.card(name)
        assert member.provenance["base_model"] == base.name and member.provenance["epochs"] == 1
        assert member.provenance["config"]["seed"] == 0  # the same configuration for every member
    # the same held-out images for every member, and the ensemble validated on them
    splits = {tuple(registry.card(n).metrics["validation"]["image_names"]) for n in tuned}
    assert len(splits) == 1 and card.metrics["validation"]["image_names"] == list(splits.pop())
    assert card.provenance["base_model"] == "team-v1" and card.metrics["calibration"]["message"].startswith("calibration:")
    assert any(m.startswith("member 1/2 (member0-v1)") for m in messages)
    assert any(m.startswith("member 2/2 (member1-v1)") for m in messages)
    loaded = registry.load("team-v2", device="cpu")
    assert isinstance(loaded, EnsembleModel) and [m.name for m in loaded.members] == tuned
    assert registry.load("team-v1", device="cpu").members[0].card.weights_sha256 == members[0].weights_sha256

