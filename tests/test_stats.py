import pytest

from softcot.stats import paired_bootstrap


def test_clear_difference_excludes_zero():
    a = [1.0] * 80 + [0.0] * 20
    b = [1.0] * 50 + [0.0] * 50
    r = paired_bootstrap(a, b)
    assert r["mean_diff"] == pytest.approx(0.30)
    assert 0.15 < r["ci95"][0] < 0.30 < r["ci95"][1] < 0.45 and r["excludes_zero"]


def test_no_difference_includes_zero_and_is_seeded():
    a = [1.0, 0.0] * 50
    b = [0.0, 1.0] * 50
    r = paired_bootstrap(a, b, seed=3)
    assert r["ci95"][0] < 0 < r["ci95"][1] and not r["excludes_zero"]
    assert paired_bootstrap(a, b, seed=3) == r


def test_bad_input():
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap([1.0], [1.0, 0.0])
