"""`make test`'s two lanes (lab/lanes.py): the split, the option, each lane's lab."""

from __future__ import annotations

import pytest

from lab import lanes

pytestmark = pytest.mark.unit

WEIGHTS = {"a": 100.0, "b": 60.0, "c": 50.0, "d": 10.0}


def test_the_heaviest_go_first_each_to_the_lightest_lane() -> None:
    assert lanes.split(WEIGHTS, ["d", "c", "b", "a"], 2) == [["a", "d"], ["b", "c"]]


def test_lane_1_carries_the_unit_tests() -> None:
    one, two = lanes.split(WEIGHTS, ["a", "b", "c", "d"], 2, head_start=200.0)
    assert one == ["d"] and two == ["a", "b", "c"]


def test_a_module_not_weighed_counts_the_default_and_nothing_is_lost() -> None:
    groups = lanes.split(WEIGHTS, ["a", "new", "b"], 3)
    assert sorted(m for g in groups for m in g) == ["a", "b", "new"]
    assert ["new"] in groups  # 20 s: lighter than a and b, so alone in the third lane


def test_one_lane_takes_everything() -> None:
    assert lanes.split(WEIGHTS, ["a", "b"], 1) == [["a", "b"]]


@pytest.mark.parametrize("raw", ["2", "0/2", "3/2", "a/b", "1/", ""])
def test_a_bad_lane_says_how_to_write_one(raw: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        lanes.parse_lane(raw)


def test_lane_2_gets_its_own_namespace_and_state_lane_1_the_lab_as_configured() -> None:
    env = {"LAB_NETNS_NAME": "swb", "LAB_STATE_DIR": "/tmp/s", "OTHER": "x"}
    assert lanes.lane_env(env, 1) == env
    assert lanes.lane_env(env, 2) == {**env, "LAB_NETNS_NAME": "swb-2", "LAB_STATE_DIR": "/tmp/s-2"}
    default = lanes.lane_env({}, 2)
    assert default["LAB_NETNS_NAME"] == "switchboard-lab-2"
    assert default["LAB_STATE_DIR"].endswith(".lab-2")


def test_the_weights_table_names_real_modules() -> None:
    weights = lanes.load_weights()
    missing = [m for m in weights if not (lanes.ROOT / m).exists()]
    assert not missing, f"re-weigh: python -m lab.lanes --weigh REPORT.xml ({missing})"
