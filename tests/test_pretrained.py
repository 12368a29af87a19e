"""The weights shipped inside the package."""

import numpy as np
import pytest

import matvae
from matvae.model import ModelConfig
from matvae.models import family_of
from matvae.pretrained import PRETRAINED, export_pretrained, pretrained_checkpoint, pretrained_path, train_or_load
from matvae.training import TrainConfig, load_checkpoint, train


@pytest.mark.parametrize("name", list(PRETRAINED))
def test_shipped_models_load_and_are_small(name):
    path = pretrained_path(name)
    assert path.is_file(), f"{path.name} is not shipped"
    assert path.stat().st_size < 4_000_000
    checkpoint = pretrained_checkpoint(name)
    assert checkpoint.optimizer_state is None  # weights only
    assert checkpoint.epoch == checkpoint.train_config.epochs  # a finished run
    assert len(checkpoint.history["test_nelbo"]) == checkpoint.epoch
    if name == "sequence":
        assert family_of(checkpoint.model_config) == "sequence" and checkpoint.epoch >= 10
    else:
        assert checkpoint.model_config.latent_dim == 10 and checkpoint.model_config.hidden_dim == 100
        assert checkpoint.epoch >= 1000  # the book's scale
        assert (checkpoint.model_config.kl_weight == 1.0) == (name == "paper-elbo")


def test_the_default_model_round_trips_and_samples():
    model = matvae.load_pretrained()
    assert family_of(model) == "sequence"
    formulas = ["LiFePO4", "NaCl", "Ga(MoS2)4", "Li7La3Zr2O12", "Fe2O3", "BaTiO3"]
    x = matvae.normalize(np.stack([matvae.encode(f) for f in formulas]))
    assert matvae.encode_means(model, x).shape == (len(formulas), model.config.latent_dim)
    back = matvae.reconstruct(model, x).formulas
    assert sum(b == matvae.reduced_formula(matvae.encode(f)) for b, f in zip(back, formulas)) >= 5, back
    samples = matvae.sample(model, 500, seed=0)
    assert samples.valid.mean() > 0.95
    assert len({f for f in samples.formulas if f}) > 450  # distinct materials
    with pytest.raises(ValueError, match="name must be one of"):
        matvae.load_pretrained("best")


def test_train_or_load_uses_matching_shipped_weights(small_split, tmp_path, monkeypatch):
    config, model_config = TrainConfig(epochs=2, batch_size=64, device="cpu"), ModelConfig(hidden_dim=8, latent_dim=2)
    trained = train(small_split.train, small_split.test, model_config, config, checkpoint_path=tmp_path / "a.pt")
    monkeypatch.setattr("matvae.pretrained.PRETRAINED_DIR", tmp_path / "shipped")
    export_pretrained(tmp_path / "a.pt", "paper")
    result = train_or_load(small_split.train, small_split.test, model_config, config, checkpoint_path=tmp_path / "b.pt")
    assert result.status == "pretrained" and result.history == trained.history
    assert load_checkpoint(tmp_path / "b.pt").optimizer_state is None  # copied for the later chapters
    other = train_or_load(small_split.train, small_split.test, model_config, TrainConfig(epochs=3, batch_size=64, device="cpu"),
                          checkpoint_path=tmp_path / "c.pt")
    assert other.status == "trained"


def test_a_copied_shipped_checkpoint_is_loaded_again_on_the_next_run(small_split, tmp_path, monkeypatch):
    """The book re-run: the chapter's checkpoint is the weights-only copy of the shipped model; a second run
    with the same settings loads it (it is finished) instead of refusing it."""
    config, model_config = TrainConfig(epochs=2, batch_size=64, device="cpu"), ModelConfig(hidden_dim=8, latent_dim=2)
    train(small_split.train, small_split.test, model_config, config, checkpoint_path=tmp_path / "a.pt")
    monkeypatch.setattr("matvae.pretrained.PRETRAINED_DIR", tmp_path / "shipped")
    export_pretrained(tmp_path / "a.pt", "paper")
    first = train_or_load(small_split.train, small_split.test, model_config, config, checkpoint_path=tmp_path / "b.pt")
    again = train_or_load(small_split.train, small_split.test, model_config, config, checkpoint_path=tmp_path / "b.pt")
    assert (first.status, again.status) == ("pretrained", "loaded")
    with pytest.raises(ValueError, match="weights only .* after 2 epochs"):
        train(small_split.train, small_split.test, model_config, TrainConfig(epochs=3, batch_size=64, device="cpu"),
              checkpoint_path=tmp_path / "b.pt")


@pytest.mark.parametrize(("notebook", "name"), [("07_beyond", "sequence"), ("02_model", "paper")])
def test_the_chapter_defaults_are_the_shipped_configuration(notebook, name):
    """The book's chapter, run with its own parameters, must find the shipped weights (else it retrains for hours)."""
    from pathlib import Path

    import jupytext

    source = Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook}.py"
    cell = next(c for c in jupytext.read(source).cells if "parameters" in c.metadata.get("tags", []))
    parameters: dict = {}
    exec(cell.source, {}, parameters)  # plain assignments of literals
    shipped = pretrained_checkpoint(name)
    config = shipped.model_config
    for key in ("latent_dim", "hidden_dim", "kl_weight"):
        assert parameters[key] == getattr(config, key), key
    assert parameters["epochs"] == shipped.epoch
    for key in ("batch_size", "learning_rate", "seed"):
        assert parameters[key] == getattr(shipped.train_config, key), key
