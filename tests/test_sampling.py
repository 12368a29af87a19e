import numpy as np
import pytest
import torch

from matvae.composition import decode_counts, formulas_from_counts
from matvae.model import VAE, ModelConfig
from matvae.sampling import SampleConfig, decoder_means, encode_means, reconstruct, sample


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VAE(ModelConfig(hidden_dim=16, latent_dim=4), class_prior=torch.tensor([0.5, 0.5] + [0.0] * 8)).eval()


def test_sample_follows_the_generative_story(model):
    samples = sample(model, 300, seed=1)
    assert len(samples) == 300 and samples.z.shape == (300, 4) and samples.probabilities.shape == (300, 89)
    assert set(np.unique(samples.classes)) <= {0, 1}  # y drawn from the class prior only
    # the formulas are the paper's rule applied to the decoder means
    assert np.array_equal(samples.counts, decode_counts(samples.probabilities, threshold=0.04))
    assert samples.formulas == formulas_from_counts(samples.counts)
    assert np.allclose(samples.probabilities, decoder_means(model, samples.z, samples.classes))
    again = sample(model, 300, seed=1)
    assert again.formulas == samples.formulas
    assert not np.array_equal(sample(model, 300, seed=2).z, samples.z)


def test_rules_and_thresholds_change_the_decoding(model):
    paper = sample(model, 200, seed=0)
    nearest = sample(model, 200, seed=0, rule="nearest")
    high = sample(model, 200, seed=0, threshold=0.9)
    assert np.array_equal(paper.probabilities, nearest.probabilities)
    assert not high.valid.any() and all(f is None for f in high.formulas)


def test_reconstruct_uses_the_latent_mean_and_given_classes(model, small_split):
    x = small_split.test.x[:20]
    out = reconstruct(model, x, y=np.zeros(20, dtype=int))
    assert np.allclose(out.z, encode_means(model, x))
    assert (out.classes == 0).all()
    guessed = reconstruct(model, x)
    with torch.no_grad():
        expected = model.classify(torch.as_tensor(x)).argmax(-1).numpy()
    assert np.array_equal(guessed.classes, expected)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, "n_samples must be >= 1"),
        ({"n": -3}, "n_samples must be >= 1"),
        ({"n": 10, "threshold": 1.5}, r"threshold must lie in \(0.0, 1.0\)"),
        ({"n": 10, "threshold": 0.0}, "threshold"),
        ({"n": 10, "rule": "round"}, "rule must be one of"),
    ],
)
def test_bad_sampling_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample(model, **kwargs)


def test_a_model_of_another_vocabulary_is_refused():
    other = VAE(ModelConfig(n_elements=50, hidden_dim=8, latent_dim=2))
    with pytest.raises(ValueError, match="vocabulary of 50 elements"):
        sample(other, 10)
    with pytest.raises(ValueError, match="must be a matvae model"):
        sample(torch.nn.Linear(2, 2), 10)


def test_sample_config_defaults_are_the_papers():
    config = SampleConfig()
    assert (config.n_samples, config.threshold, config.rule) == (10_000, 0.04, "paper")
