import pytest

from kdnlp.core.errors import KdnlpError
from kdnlp.modeling.layers import describe, layer_map


def test_uniform_is_tinyberts_map_and_reaches_the_top():
    assert layer_map("uniform", 4, 12) == [(1, 3), (2, 6), (3, 9), (4, 12)]
    assert layer_map("uniform", 4, 6) == [(1, 1), (2, 3), (3, 4), (4, 6)]  # N not a multiple of M
    assert layer_map("uniform", 3, 3) == [(1, 1), (2, 2), (3, 3)]


def test_pkd_skip_and_last_follow_the_paper_for_12_to_6():
    assert [t for _, t in layer_map("skip", 6, 12)] == [2, 4, 6, 8, 10]
    assert [t for _, t in layer_map("last", 6, 12)] == [7, 8, 9, 10, 11]
    assert layer_map("skip", 3, 6) == [(1, 2), (2, 4)]


def test_the_student_rules_map_too():
    assert layer_map("spread", 6, 12) == [(1, 1), (2, 3), (3, 5), (4, 8), (5, 10), (6, 12)]  # DistilBERT's layers
    assert layer_map("first", 3, 6) == [(1, 1), (2, 2), (3, 3)]
    assert layer_map("every_other", 3, 6) == [(1, 1), (2, 3), (3, 5)]


def test_explicit_lists_and_errors():
    assert layer_map([2, 5, 6], 3, 6) == [(1, 2), (2, 5), (3, 6)]
    assert describe([(1, 2), (2, 5)]) == "s1<-t2, s2<-t5"
    for args, message in [(([1, 7, 2], 3, 6), "teacher layer 7 is out of range 1..6"),
                          (([0, 2, 4], 3, 6), r"layers count from 1 \(0 is the embeddings\)"),
                          (("every_other", 2, 6), "every_other keeps 3 of 6 layers, not 2"),
                          (([1, 2], 3, 6), "gives 2 teacher layers for a student with 3"),
                          (("uniform", 8, 6), "cannot map onto a teacher with 6"),
                          (("zigzag", 3, 6), "unknown layer rule 'zigzag'; valid: uniform, spread, skip, first, last, every_other")]:
        with pytest.raises(KdnlpError, match=message):
            layer_map(*args)
