"""Catalogue rules: the category DAG refuses cycles, scales and names are checked."""

import pytest

from services.platform.errors import InvalidArgument
from services.skills.domain.categories import cycle_through, descendants
from services.skills.domain.model import (
    ExternalReference,
    Framework,
    ScaleLevel,
    check_levels,
    check_names,
    check_reference,
    fold,
)

GRAPH = {"b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["d"]}  # a diamond with a tail


def test_several_parents_are_fine_without_a_cycle():
    assert cycle_through(GRAPH, "e", ["b", "c"]) == []
    assert cycle_through(GRAPH, "a", []) == []


def test_a_parent_below_the_category_makes_a_cycle_and_the_path_is_shown():
    path = cycle_through(GRAPH, "a", ["e"])
    assert path[:3] == ["a", "e", "d"] and path[3] in ("b", "c") and path[-1] == "a"
    assert cycle_through(GRAPH, "b", ["d"]) == ["b", "d", "b"]
    assert cycle_through(GRAPH, "x", ["x"]) == ["x", "x"]


def test_descendants_follow_every_path_once():
    children = {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": ["e"]}
    assert descendants(children, "a") == {"b", "c", "d", "e"}
    assert descendants(children, "e") == set()


def test_scale_levels_need_distinct_ordinals_names_and_behaviour():
    ok = check_levels([ScaleLevel(2, "Two", "does two"), ScaleLevel(1, "One", "does one")], "levels")
    assert [lv.ordinal for lv in ok] == [1, 2]
    with pytest.raises(InvalidArgument) as err:
        check_levels([ScaleLevel(1, "One", "x"), ScaleLevel(1, "Again", "y"), ScaleLevel(0, "", "")], "levels")
    fields = {v.field for v in err.value.violations}
    assert {"levels[1].ordinal", "levels[2].ordinal", "levels[2].name", "levels[2].description"} <= fields
    with pytest.raises(InvalidArgument):
        check_levels([], "levels")


def test_external_references_are_shape_checked():
    assert check_reference(ExternalReference(Framework.SFIA, "RLMT"), "r").id == "RLMT"
    assert check_reference(ExternalReference(Framework.ONET, "2.B.1.a"), "r").id == "2.B.1.a"
    check_reference(ExternalReference(Framework.ESCO, "http://data.europa.eu/esco/skill/abc"), "r")
    for bad in [
        ExternalReference(Framework.SFIA, "rlmt"),
        ExternalReference(Framework.ONET, "social"),
        ExternalReference(Framework.ESCO, "https://example.com/x"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            check_reference(bad, "skill.external_references[0]")
        assert err.value.violations[0].field == "skill.external_references[0].id"


def test_names_are_trimmed_and_aliases_deduplicated_ignoring_case():
    name, aliases = check_names("  Customer   empathy ", ["empathy", "EMPATHY", "customer empathy", " CX "], "skill")
    assert name == "Customer empathy" and aliases == ["empathy", "CX"]
    assert fold("Customer  Empathy") == "customer empathy"
    with pytest.raises(InvalidArgument):
        check_names(" ", [], "skill")
