import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

from matvae.model import VAE, ModelConfig, kl_normal, log_bernoulli_with_logits


def test_kl_normal_matches_torch_distributions():
    torch.manual_seed(0)
    qm, pm = torch.randn(7, 10), torch.randn(7, 10)
    qv, pv = torch.rand(7, 10) + 0.1, torch.rand(7, 10) + 0.1
    expected = kl_divergence(Normal(qm, qv.sqrt()), Normal(pm, pv.sqrt())).sum(-1)
    assert torch.allclose(kl_normal(qm, qv, pm, pv), expected, atol=1e-5)
    # against the standard normal prior, the model's case
    expected = kl_divergence(Normal(qm, qv.sqrt()), Normal(torch.zeros(10), torch.ones(10))).sum(-1)
    assert torch.allclose(kl_normal(qm, qv, torch.zeros_like(qm), torch.ones_like(qv)), expected, atol=1e-5)


def test_bernoulli_log_likelihood_matches_torch_for_binary_and_soft_targets():
    torch.manual_seed(1)
    logits = torch.randn(5, 89)
    binary = (torch.rand(5, 89) < 0.3).float()
    assert torch.allclose(log_bernoulli_with_logits(binary, logits), Bernoulli(logits=logits).log_prob(binary).sum(-1), atol=1e-4)
    soft = torch.rand(5, 89)
    p = torch.sigmoid(logits.double())
    expected = (soft * p.log() + (1 - soft) * (1 - p).log()).sum(-1)
    assert torch.allclose(log_bernoulli_with_logits(soft, logits).double(), expected, atol=1e-4)


def batch(n=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 89, generator=generator) * (torch.rand(n, 89, generator=generator) < 0.05)
    x[:, 0] += 0.01
    return x / x.sum(1, keepdim=True), torch.randint(0, 10, (n,), generator=generator)


@pytest.mark.parametrize("variance", ["softplus", "exp"])
def test_shapes_and_loss_terms(variance):
    model = VAE(ModelConfig(variance=variance, class_weight=0.5))
    x, y = batch()
    mean, var = model.encode(x)
    assert mean.shape == var.shape == (16, 10) and (var > 0).all()
    assert model.decode(mean, y).shape == (16, 89)
    assert model.classify(x).shape == (16, 10)
    generator = torch.Generator().manual_seed(3)
    nelbo, kl, rec = model.negative_elbo_bound(x, y, torch.Generator().manual_seed(3))
    assert torch.isclose(nelbo, kl + rec) and kl >= 0 and rec > 0
    loss, summaries = model.loss(x, y, generator)
    assert set(summaries) == {"loss", "nelbo", "kl", "rec", "ce", "accuracy"}
    assert torch.isclose(loss, summaries["nelbo"] + 0.5 * summaries["ce"])
    assert torch.isclose(summaries["nelbo"], nelbo)  # the same seeded noise gives the same bound
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_parameter_count_follows_the_architecture():
    h, z, e, c = 100, 10, 89, 10
    layers = lambda i, o: (i * h + h) + (h * h + h) + (h * o + o)  # noqa: E731
    counts = VAE(ModelConfig()).n_parameters()
    assert counts == {
        "encoder": layers(e, 2 * z),
        "decoder": layers(z + c, e),
        "classifier": layers(e, c),
        "total": layers(e, 2 * z) + layers(z + c, e) + layers(e, c),
    }
    layer_types = [type(m).__name__ for m in VAE(ModelConfig()).encoder]
    assert layer_types == ["Linear", "ELU", "Linear", "ELU", "Linear"]


def test_class_prior_is_normalised_and_checked():
    model = VAE(ModelConfig(n_classes=3), class_prior=torch.tensor([2.0, 1.0, 1.0]))
    assert torch.allclose(model.class_prior, torch.tensor([0.5, 0.25, 0.25]))
    for bad in ([1.0, 1.0], [1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [float("nan"), 1.0, 1.0]):
        with pytest.raises(ValueError, match="class_prior"):
            VAE(ModelConfig(n_classes=3), class_prior=torch.tensor(bad))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"latent_dim": 0}, "latent_dim must be >= 1"),
        ({"hidden_dim": -100}, "hidden_dim must be >= 1"),
        ({"hidden_dim": 100.5}, "hidden_dim must be an integer"),
        ({"n_classes": 1}, "n_classes must be >= 2"),
        ({"variance": "log"}, "variance must be one of"),
        ({"class_weight": -1.0}, "class_weight"),
    ],
)
def test_bad_model_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)
