"""One API for both model families: sample, reconstruct, encode_means, train, checkpoints, the registry."""

import numpy as np
import pytest
import torch

import matvae
from matvae import comparison, metrics
from matvae.model import VAE, ModelConfig
from matvae.models import FAMILIES, build_model, config_from_dict, config_to_dict, family_of
from matvae.models.sequence import SequenceConfig, SequenceVAE
from matvae.training import TrainConfig, load_checkpoint, load_model, train

PAPER = ModelConfig(hidden_dim=16, latent_dim=4)
SEQUENCE = SequenceConfig(latent_dim=4, hidden_dim=16, embed_dim=8, n_components=4)
FAST = TrainConfig(epochs=2, batch_size=64, device="cpu", checkpoint_every=1)


@pytest.fixture(scope="module", params=["paper", "sequence"])
def trained(request, small_split, tmp_path_factory):
    config = PAPER if request.param == "paper" else SEQUENCE
    path = tmp_path_factory.mktemp(request.param) / "model.pt"
    return request.param, train(small_split.train, small_split.test, config, FAST, checkpoint_path=path), path


def test_the_registry_maps_configs_to_models():
    assert set(FAMILIES) == {"paper", "sequence"}
    assert family_of(PAPER) == "paper" and family_of(SEQUENCE) == "sequence"
    assert isinstance(build_model(PAPER), VAE) and isinstance(build_model(SEQUENCE), SequenceVAE)
    assert family_of(build_model(SEQUENCE)) == "sequence"
    assert config_from_dict("sequence", config_to_dict(SEQUENCE)) == SEQUENCE
    with pytest.raises(ValueError, match="families"):
        family_of({"latent_dim": 4})
    with pytest.raises(ValueError, match="model family must be one of"):
        config_from_dict("transformer", {})


def test_train_checkpoints_and_reloads_either_family(trained, small_split):
    family, result, path = trained
    checkpoint = load_checkpoint(path)
    assert family_of(checkpoint.model_config) == family and checkpoint.epoch == 2
    reloaded = load_model(path)
    assert type(reloaded) is type(result.model)
    x = small_split.test.x[:16]
    assert np.array_equal(matvae.encode_means(reloaded, x), matvae.encode_means(result.model, x))
    again = train(small_split.train, small_split.test, result.model.config, FAST, checkpoint_path=path)
    assert again.status == "loaded"


def test_the_shared_api_works_on_either_family(trained, small_split):
    family, result, _ = trained
    model = result.model
    x, n = small_split.test.x[:30], 30
    codes = matvae.encode_means(model, x)
    assert codes.shape == (n, model.config.latent_dim) and codes.dtype == np.float32
    rebuilt = matvae.reconstruct(model, x)
    assert rebuilt.counts.shape == (n, 89) and rebuilt.counts.dtype == np.int64 and len(rebuilt.formulas) == n
    assert np.allclose(rebuilt.z, codes)
    samples = matvae.sample(model, 40, seed=3)
    assert len(samples) == 40 and samples.counts.shape == (40, 89)
    assert samples.formulas == matvae.sample(model, 40, seed=3).formulas  # seeded
    decoded = samples.counts[samples.valid]
    assert (np.gcd.reduce(decoded, axis=1) == 1).all()  # reduced integer formulas
    assert [f is None for f in samples.formulas] == list(~samples.valid)


def test_each_family_refuses_settings_that_are_not_its_own(trained, small_split):
    family, result, _ = trained
    x = small_split.test.x[:5]
    if family == "sequence":
        with pytest.raises(ValueError, match="threshold=0.04 does not apply to the sequence family"):
            matvae.sample(result.model, 5, threshold=0.04)
        with pytest.raises(ValueError, match="rule must be one of"):
            matvae.reconstruct(result.model, x, rule="paper")
        assert matvae.reconstruct(result.model, x, rule="greedy").formulas == matvae.reconstruct(result.model, x).formulas
    else:
        with pytest.raises(ValueError, match="rule must be one of"):
            matvae.sample(result.model, 5, rule="greedy")
    with pytest.raises(ValueError, match="y must lie in"):
        matvae.reconstruct(result.model, x, y=np.full(5, 10))


def test_a_sequence_model_decodes_integer_formulas_without_a_threshold(small_split):
    torch.manual_seed(0)
    model = SequenceVAE(SEQUENCE).eval()
    samples = matvae.sample(model, 50, seed=0)
    fractions = samples.probabilities[samples.valid]
    assert np.allclose(fractions.sum(axis=1), 1, atol=1e-6)  # the decoded compositions themselves
    assert (samples.classes[~samples.valid] == -1).all()


def test_round_trip_table_has_one_row_per_rule(trained, small_split):
    family, result, _ = trained
    table = comparison.round_trip(result.model, small_split.test)
    assert list(table.index) == (["paper", "nearest"] if family == "paper" else ["greedy"])
    assert ((table >= 0) & (table <= 1)).all().all()


def test_the_paper_names_load_the_shipped_paper_models():
    paper = matvae.load_pretrained("paper")
    assert isinstance(paper, VAE) and paper.config.kl_weight < 1
    assert matvae.load_pretrained("paper-elbo").config.kl_weight == 1.0
    assert torch.equal(matvae.load_pretrained("vae").encoder[0].weight, paper.encoder[0].weight)  # the 0.1 alias
    with pytest.raises(ValueError, match="name must be one of"):
        matvae.load_pretrained(["paper"])


def test_wasserstein_spread_gives_one_seeded_distance_per_seed(trained, small_split):
    family, result, _ = trained
    reference = small_split.test.counts
    spread = comparison.wasserstein_spread(result.model, reference, n_samples=60, seeds=[0, 1, 0])
    assert spread.shape == (3,) and (spread >= 0).all()
    assert spread[0] == spread[2]  # the same seed draws the same samples
    alone = metrics.n_elements_wasserstein(matvae.sample(result.model, 60, seed=1).counts, reference)
    assert spread[1] == pytest.approx(alone)
    with pytest.raises(ValueError, match="seeds is empty"):
        comparison.wasserstein_spread(result.model, reference, n_samples=10, seeds=[])
    with pytest.raises(ValueError, match="seed must be an integer"):
        comparison.wasserstein_spread(result.model, reference, n_samples=10, seeds=[1.5])
    with pytest.raises(ValueError, match="reference_counts must be"):
        comparison.wasserstein_spread(result.model, np.zeros((3, 89)), n_samples=10, seeds=[0])
