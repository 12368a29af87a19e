import pytest

import numpy as np

from matvae.params import (
    MAX_SEED,
    check_choice,
    check_float,
    check_float_list,
    check_int,
    check_int_list,
    check_seed,
    check_str,
    show,
)


def test_good_values_pass_through():
    assert check_int("epochs", 5, minimum=1) == 5
    assert type(check_int("epochs", np.int64(5))) is int  # numpy integers come back as Python ints
    assert check_seed("seed", MAX_SEED) == 2**63 - 1
    assert check_float("threshold", np.float32(0.5)) == 0.5
    assert check_float("threshold", 1, low=0, high=2) == 1.0
    assert check_choice("device", "cpu", ["cpu", "cuda"]) == "cpu"
    assert check_int_list("widths", "50, 100,150") == (50, 100, 150)
    assert check_float_list("thresholds", [0.02, 0.04], low=0, high=1) == (0.02, 0.04)
    assert check_str("name", "x", allow_empty=False) == "x"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: check_int("epochs", -5, minimum=1), "epochs must be >= 1, got -5"),
        (lambda: check_int("epochs", 10**9, maximum=10**6), "epochs must be <= 1000000"),
        (lambda: check_int("epochs", "10"), r"epochs must be an integer, got '10' \(str\)"),
        (lambda: check_int("epochs", True), r"epochs must be an integer, got True \(bool\)"),
        (lambda: check_int("epochs", 2.5), r"epochs must be an integer, got 2.5 \(float\)"),
        # one policy: a whole-number float is refused too, never truncated or rounded
        (lambda: check_int("n_samples", 10.0, minimum=1), r"n_samples must be an integer >= 1, got 10.0 \(float\)"),
        (lambda: check_int("n_samples", 1e4, minimum=1, maximum=10**7), r"integer >= 1 and <= 10000000, got 10000.0"),
        (lambda: check_int("n", np.float64(3.0)), r"n must be an integer, got np.float64\(3.0\) \(float64\)"),
        (lambda: check_int("n", np.bool_(True)), r"n must be an integer, got np.True_ \(bool\)"),
        (lambda: check_int("n", None), r"n must be an integer, got None \(NoneType\)"),
        (lambda: check_seed("seed", -1), "seed must be >= 0, got -1"),
        (lambda: check_seed("seed", 2**63), "seed must be <= 9223372036854775807, got 9223372036854775808"),
        (lambda: check_seed("seed", 10**5000), "seed must be <= 9223372036854775807, got an integer of about 5001 digits"),
        (lambda: check_int_list("widths", [50, 100.0]), r"widths\[1\] must be an integer, got 100.0 \(float\)"),
        (lambda: check_int_list("widths", "50,100.0"), "comma-separated list of integers"),
        (lambda: check_float("lr", 10**400), "lr must be finite, got an integer of about 401 digits"),
        (lambda: check_float("lr", np.bool_(True)), "lr must be a number, got bool"),
        (lambda: check_float("threshold", 2, low=0, high=1, low_inclusive=False, high_inclusive=False), r"threshold must lie in \(0, 1\), got 2.0"),
        (lambda: check_float("threshold", 0, low=0, high=1, low_inclusive=False), r"must lie in \(0, 1\]"),
        (lambda: check_float("lr", float("nan")), "lr must be finite"),
        (lambda: check_float("lr", None), "lr must be a number, got NoneType"),
        (lambda: check_choice("device", "tpu", ["cpu", "cuda"]), r"device must be one of \('cpu', 'cuda'\), got 'tpu'"),
        (lambda: check_str("name", 3), "name must be a string"),
        (lambda: check_str("name", " ", allow_empty=False), "name must not be empty"),
        (lambda: check_int_list("widths", "50,abc"), "comma-separated list of integers"),
        (lambda: check_int_list("widths", []), "non-empty list"),
        (lambda: check_int_list("widths", [50, 0], minimum=1), r"widths\[1\] must be >= 1"),
        (lambda: check_float_list("thresholds", "0.1,x"), "comma-separated list of numbers"),
    ],
)
def test_bad_values_name_the_setting_value_and_range(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_show_shortens_long_values():
    assert show("x" * 200).endswith("...'") and len(show("x" * 200)) == 60
    assert show(12) == "12"
    assert show(-(10**40)) == "a negative integer of about 41 digits"
