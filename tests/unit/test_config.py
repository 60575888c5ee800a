import pytest

from objsync.deletecap import max_delete_count, parse_max_delete


@pytest.mark.parametrize("text", ["nan%", "NaN%", " nan % ", "inf%", "-inf%", "infinity%"])
def test_max_delete_rejects_non_finite_percentages(text):
    with pytest.raises(ValueError) as info:
        parse_max_delete(text)
    assert repr(text) in str(info.value) and "finite" in str(info.value) and "0% to 100%" in str(info.value)


@pytest.mark.parametrize("text", ["nan", "inf", "-1", "101%", "-1%", "ten"])
def test_max_delete_rejects_other_bad_values(text):
    with pytest.raises(ValueError, match=repr(text)):
        parse_max_delete(text)


@pytest.mark.parametrize("text, count", [("0", 0), ("5", 5), ("0%", 0), ("50%", 50), ("100%", 100), ("12.5%", 13)])
def test_accepted_max_delete_values_plan_a_count(text, count):
    assert max_delete_count(parse_max_delete(text), 100) == count
