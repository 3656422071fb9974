"""The one-line error helpers of `cift.errors`."""
import pytest

from cift.errors import CiftInputError, check_choice, name_list, print_input_error


@pytest.mark.parametrize("names,most,expected", [
    ([], 3, ""),
    (["a"], 3, "a"),
    (["a", "b", "c"], 3, "a, b, c"),
    (["a", "b", "c", "d"], 3, "a, b, c and 1 more"),
    ([f"p{i}" for i in range(10)], 2, "p0, p1 and 8 more"),
])
def test_name_list_shows_at_most_that_many_then_counts_the_rest(names, most, expected):
    assert name_list(names, most) == expected


def test_print_input_error_prints_the_last_line_once(capsys):
    status = print_input_error(ValueError("Traceback (worker)\n  File x\nbad.jpg: cannot read"))
    assert status == 2
    assert capsys.readouterr().err == "error: bad.jpg: cannot read\n"


def test_check_choice_names_key_value_and_choices():
    check_choice("TEST.METRIC", "cosine", ("cosine",))
    with pytest.raises(CiftInputError, match="TEST.METRIC 'euclidean'") as err:
        check_choice("TEST.METRIC", "euclidean", ("cosine",))
    assert "cosine" in str(err.value) and "\n" not in str(err.value)
