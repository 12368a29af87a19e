import pytest

from matvae.params import check_choice, check_float, check_float_list, check_int, check_int_list, check_str


def test_good_values_pass_through():
    assert check_int("epochs", 5, minimum=1) == 5
    assert check_int("epochs", 5.0) == 5
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
        (lambda: check_int("epochs", "10"), "epochs must be an integer, got str '10'"),
        (lambda: check_int("epochs", True), "epochs must be an integer, got bool"),
        (lambda: check_int("epochs", 2.5), "epochs must be an integer"),
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
