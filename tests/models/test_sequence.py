"""SequenceVAE: formula tokens, likelihood and KL against torch.distributions, decoding, determinism, config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import distributions as D

from matvae.composition import encode, normalize, reduced_formula
from matvae.elements import ELEMENT_INDEX, N_ELEMENTS
from matvae.models.sequence import (
    FormulaTokens,
    SequenceConfig,
    SequenceVAE,
    formula_tokens,
    kl_standard_normal,
    tokens_to_counts,
)

FORMULAS = [
    "Ga(MoS2)4", "Li7La3Zr2O12", "Fe2O3", "CuSO4(H2O)5", "NaCl", "Si", "Ba2YCu3O7", "Mn23C6",
    "LiFePO4", "K2PtCl6", "Ca5(PO4)3F", "Al2(SO4)3(H2O)18", "U3O8", "C60", "Sr2FeMoO6",
]  # fmt: skip
TINY = dict(hidden_dim=16, embed_dim=8, latent_dim=4, n_components=3)


def fractions(formulas: list[str]) -> torch.Tensor:
    return torch.tensor(np.stack([normalize(encode(f)) for f in formulas]), dtype=torch.float32)


def model(**changes) -> SequenceVAE:
    torch.manual_seed(0)
    return SequenceVAE(SequenceConfig(**{**TINY, **changes}))


@pytest.mark.parametrize("order", ["electronegativity", "alphabetical"])
def test_fractions_to_tokens_to_counts_round_trip_exactly(order):
    vae = model(element_order=order)
    x = fractions(FORMULAS)
    tokens = vae.tokenize(x)
    assert tokens.exact.all()
    counts = tokens_to_counts(tokens.ranks, tokens.counts, vae.order)
    assert counts.dtype == torch.int64
    expected = np.stack([encode(f) for f in FORMULAS]).astype(np.int64)
    np.testing.assert_array_equal(counts.numpy(), expected)
    assert [reduced_formula(c) for c in counts.numpy()] == [reduced_formula(encode(f)) for f in FORMULAS]
    both = tokens.mask[:, 1:]
    assert (tokens.ranks[:, 1:] > tokens.ranks[:, :-1])[both].all(), "tokens come in ascending element order"


def test_electronegativity_order_puts_the_anion_last():
    vae = model()
    tokens = vae.tokenize(fractions(["Fe2O3"]))
    last = vae.order[tokens.ranks[0, tokens.length[0] - 1]]
    assert int(last) == ELEMENT_INDEX["O"]


def test_tokens_report_what_they_cannot_represent():
    x = fractions(["Fe2O3"]).double()
    x[0, ELEMENT_INDEX["Fe"]] += 1e-3  # no integer formula nearby
    tokens = formula_tokens(x, torch.arange(N_ELEMENTS), max_length=10, max_total=512)
    assert not tokens.exact[0]
    with pytest.raises(ValueError, match="max_length=2"):
        formula_tokens(fractions(["LiFePO4"]), torch.arange(N_ELEMENTS), max_length=2, max_total=512)
    with pytest.raises(ValueError, match="all zeros"):
        formula_tokens(torch.zeros(1, N_ELEMENTS), torch.arange(N_ELEMENTS), max_length=10, max_total=512)
    with pytest.raises(ValueError, match="max_total"):
        model().loss(x.float(), torch.zeros(1, dtype=torch.int64))
    big = fractions(["Mn23C6"])  # 23 > max_count = 8: the overflow class
    vae = model(max_count=8)
    tokens = vae.tokenize(big)
    assert vae.count_classes(tokens)[tokens.mask].tolist() == [8, 5]  # C6 -> class 5, Mn23 -> overflow class 8


def test_token_likelihood_equals_categorical_log_probs():
    vae = model()
    x = fractions(FORMULAS)
    tokens = vae.tokenize(x)
    classes = vae.count_classes(tokens)
    z = torch.randn(len(x), vae.config.latent_dim)
    element_logits, count_logits = vae.decoder.logits(z, tokens, classes)
    steps = torch.arange(vae.config.max_length + 1)
    length = tokens.length.unsqueeze(1)
    end = torch.full((len(x), 1), N_ELEMENTS)
    element_target = torch.cat([tokens.ranks, end], dim=1).masked_fill(steps > length, 0)  # end at step length
    count_target = torch.cat([classes, end], dim=1).masked_fill(steps >= length, 0)
    element_lp = D.Categorical(logits=element_logits.masked_fill(steps.view(1, -1, 1) > length.unsqueeze(-1), 0.0))
    count_lp = D.Categorical(logits=count_logits)
    expected = (element_lp.log_prob(element_target) * (steps <= length)).sum(1)
    expected += (count_lp.log_prob(count_target) * (steps < length)).sum(1)
    torch.testing.assert_close(vae.decoder.log_likelihood(z, tokens, classes), expected)


def test_decoder_distribution_sums_to_one_over_all_sequences():
    """max_length 2 and max_count 2 (plus overflow): enumerate every token sequence the decoder can emit."""
    vae = model(max_length=2, max_count=2)
    z = torch.randn(1, vae.config.latent_dim)
    first, second = torch.triu_indices(N_ELEMENTS, N_ELEMENTS, offset=1)  # every pair of ranks a < b
    singles = torch.stack([torch.arange(N_ELEMENTS), torch.full((N_ELEMENTS,), N_ELEMENTS)], dim=1)
    ranks = torch.cat([singles, torch.stack([first, second], dim=1)])  # (89 + 3916, 2); 89 = no element
    counts = torch.cartesian_prod(torch.arange(1, 4), torch.arange(1, 4))  # 3 = overflow
    ranks = ranks.repeat_interleave(len(counts), dim=0)
    counts = counts.repeat(len(ranks) // len(counts), 1) * (ranks < N_ELEMENTS)
    keep = (counts[:, 1] <= 1) | (ranks[:, 1] < N_ELEMENTS)  # one copy of each single-element sequence
    keep &= ~((ranks[:, 1] == N_ELEMENTS) & (counts[:, 1] > 0))
    ranks, counts = ranks[keep], counts[keep]
    ranks, counts = torch.unique(torch.cat([ranks, counts], dim=1), dim=0).split(2, dim=1)
    assert len(ranks) == N_ELEMENTS * 3 + len(first) * 9
    tokens = FormulaTokens(ranks, counts, (ranks < N_ELEMENTS).sum(1), torch.ones(len(ranks), dtype=torch.bool))
    with torch.no_grad():
        log_p = vae.decoder.log_likelihood(z.expand(len(ranks), -1), tokens, vae.count_classes(tokens))
    assert math.isclose(float(torch.logsumexp(log_p, 0).exp()), 1.0, rel_tol=1e-4)


def test_kl_terms_against_torch_distributions():
    torch.manual_seed(1)
    mean, variance = torch.randn(5, 4), torch.rand(5, 4) + 0.1
    q = D.Independent(D.Normal(mean, variance.sqrt()), 1)
    p = D.Independent(D.Normal(torch.zeros(4), torch.ones(4)), 1)
    torch.testing.assert_close(kl_standard_normal(mean, variance), D.kl_divergence(q, p))
    vae = model(prior="mog")
    with torch.no_grad():
        vae.prior.logits.copy_(torch.tensor([0.3, -1.0, 2.0]))
        vae.prior.log_variances.copy_(torch.randn(3, 4) * 0.3)
    mixture = D.MixtureSameFamily(
        D.Categorical(logits=vae.prior.logits),
        D.Independent(D.Normal(vae.prior.means, (0.5 * vae.prior.log_variances).exp()), 1),
    )
    z = torch.randn(5, 4)
    torch.testing.assert_close(vae.prior.log_prob(z), mixture.log_prob(z))
    torch.testing.assert_close(vae.kl(mean, variance, z), q.log_prob(z) - mixture.log_prob(z))
    normal = model(prior="normal")
    torch.testing.assert_close(normal.kl(mean, variance, z), D.kl_divergence(q, p))


@pytest.mark.parametrize("prior", ["normal", "mog"])
def test_loss_keys_nelbo_and_determinism(prior):
    x, y = fractions(FORMULAS), torch.arange(len(FORMULAS)) % 10
    runs = []
    for _ in range(2):
        vae = model(prior=prior, kl_weight=0.5)
        loss, summaries = vae.loss(x, y, torch.Generator().manual_seed(3))
        runs.append(summaries)
    assert set(summaries) == {"loss", "nelbo", "kl", "rec", "ce", "accuracy"}
    assert all(v.dim() == 0 for v in summaries.values())
    torch.testing.assert_close(summaries["nelbo"], summaries["rec"] + summaries["kl"])
    torch.testing.assert_close(loss, summaries["rec"] + 0.5 * summaries["kl"] + summaries["ce"])
    for key in summaries:
        assert torch.equal(runs[0][key], runs[1][key])
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in vae.parameters() if p.requires_grad)


@pytest.mark.parametrize("prior", ["normal", "mog"])
def test_sampling_and_decoding(prior):
    vae = model(prior=prior)
    z = vae.sample_prior(7, torch.Generator().manual_seed(0))
    assert z.shape == (7, 4)
    assert torch.equal(z, vae.sample_prior(7, torch.Generator().manual_seed(0)))
    counts, overflow = vae.decode_counts(z, return_overflow=True)
    assert counts.dtype == torch.int64 and counts.shape == (7, N_ELEMENTS) and overflow.shape == (7,)
    assert (counts >= 0).all()
    assert (counts[overflow] == 0).all()
    alive = counts[counts.any(dim=1)]
    assert (np.gcd.reduce(alive.numpy(), axis=1) == 1).all()
    mean, variance = vae.encode(fractions(FORMULAS))
    assert mean.shape == variance.shape == (len(FORMULAS), 4) and (variance > 0).all()
    assert vae.classify(fractions(FORMULAS)).shape == (len(FORMULAS), 10)
    assert vae.n_parameters()["total"] == sum(p.numel() for p in vae.parameters())


def test_overflow_decodes_to_no_formula():
    vae = model(max_count=2)
    with torch.no_grad():  # force: first step element rank 0, count class 2 = overflow, then end
        vae.decoder.count_head[-1].bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    counts, overflow = vae.decode_counts(torch.zeros(3, 4), return_overflow=True)
    assert overflow.all() and (counts == 0).all()


def test_checkpoint_rebuilds_the_model():
    from dataclasses import asdict

    vae = model()
    state = {"config": asdict(vae.config), "state": vae.state_dict()}
    rebuilt = SequenceVAE(SequenceConfig(**state["config"]))
    rebuilt.load_state_dict(state["state"])
    z = torch.randn(5, 4)
    assert torch.equal(vae.decode_counts(z), rebuilt.decode_counts(z))


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("family", "vae", "family"),
        ("n_elements", 90, "n_elements"),
        ("latent_dim", 0, "latent_dim"),
        ("latent_dim", 8.0, "latent_dim"),
        ("kl_weight", -1.0, "kl_weight"),
        ("prior", "vamp", "prior"),
        ("max_total", 10**5, "max_total"),
        ("element_order", "zz", "element_order"),
    ],
)
def test_config_checks(field, value, match):
    with pytest.raises(ValueError, match=match):
        SequenceConfig(**{field: value})


def test_class_prior_is_a_checked_buffer():
    vae = SequenceVAE(SequenceConfig(**TINY), class_prior=torch.arange(10.0))
    torch.testing.assert_close(vae.class_prior.sum(), torch.tensor(1.0))
    assert "class_prior" in vae.state_dict()
    with pytest.raises(ValueError, match="class_prior"):
        SequenceVAE(SequenceConfig(**TINY), class_prior=torch.ones(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    vae = model().cuda()
    x, y = fractions(FORMULAS).cuda(), torch.zeros(len(FORMULAS), dtype=torch.int64).cuda()
    loss, _ = vae.loss(x, y, torch.Generator(device="cuda").manual_seed(0))
    loss.backward()
    counts = vae.decode_counts(vae.sample_prior(4, torch.Generator(device="cuda").manual_seed(0)))
    assert counts.device.type == "cuda" and counts.dtype == torch.int64
