import numpy as np
import pytest

from matvae.sampling import decode_codes, sample


def test_decode_codes_repeats_the_models_own_sampling(paper_model, sequence_model):
    samples = sample(sequence_model, 40, seed=3)
    assert decode_codes(sequence_model, samples.z) == samples.formulas
    samples = sample(paper_model, 40, seed=3)
    assert decode_codes(paper_model, samples.z, y=samples.classes) == samples.formulas
    modal = int(paper_model.class_prior.argmax())  # the default class of the paper family
    assert decode_codes(paper_model, samples.z) == decode_codes(paper_model, samples.z, y=np.full(40, modal))


def test_decode_codes_refuses_bad_codes_and_settings(paper_model, sequence_model):
    with pytest.raises(ValueError, match=r"z must have shape \(n, 10\)"):
        decode_codes(paper_model, np.zeros((2, 32)))
    with pytest.raises(ValueError, match="finite"):
        decode_codes(paper_model, np.full((1, 10), np.nan))
    with pytest.raises(ValueError, match="y does not apply"):
        decode_codes(sequence_model, np.zeros((1, 32)), y=np.zeros(1, dtype=int))
    with pytest.raises(ValueError, match="threshold"):
        decode_codes(sequence_model, np.zeros((1, 32)), threshold=0.04)
