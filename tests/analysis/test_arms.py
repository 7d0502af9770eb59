"""One function resolves the arms (analysis.stats.arms): the control-arm rule and the masked fallback."""
from __future__ import annotations

from analysis.stats.arms import MASKED_WARNING, arms_from_manifest, resolve_arms


def test_control_is_the_only_other_arm():
    choice = resolve_arms(["ai_assisted", "standard"], "ai_assisted")
    assert (choice.assisted, choice.control, choice.warnings, choice.problem) == ("ai_assisted", "standard", (), None)


def test_control_defaults_to_unassisted_among_several():
    choice = resolve_arms(["ai_assisted", "other", "unassisted"], "ai_assisted")
    assert choice.control == "unassisted" and not choice.warnings


def test_ambiguous_control_warns_when_lenient_and_is_a_problem_when_strict():
    lenient = resolve_arms(["a", "b", "c"], "a")
    assert lenient.control == "b" and "several control candidates" in lenient.warnings[0]
    strict = resolve_arms(["a", "b", "c"], "a", lenient=False)
    assert strict.control is None and "cannot tell the control arm" in strict.problem


def test_masked_export_takes_the_first_of_two_arms():
    choice = resolve_arms(["X", "Y"], "ai_assisted")
    assert (choice.assisted, choice.control) == ("X", "Y") and "masked export" in choice.warnings[0]
    strict = resolve_arms(["X", "Y"], "ai_assisted", lenient=False)
    assert strict.problem == "assisted arm 'ai_assisted' not in data (arms: ['X', 'Y'])"


def test_named_control_is_kept_and_absent_assisted_is_a_problem():
    assert resolve_arms(["a", "b", "c"], "a", "c").control == "c"
    choice = resolve_arms(["a", "b", "c"], "z")
    assert choice.problem and choice.assisted == "z"


def test_manifest_asks_for_x_and_y_while_masked():
    masked = arms_from_manifest({"arms_masked": True, "assisted_arm": "ai_assisted"})
    assert (masked.assisted, masked.control, masked.warnings) == ("X", "Y", (MASKED_WARNING,))
    assert arms_from_manifest({"assisted_arm": None}).assisted == "X"
    unmasked = arms_from_manifest({"arms_masked": False, "assisted_arm": "ai_assisted"})
    assert (unmasked.assisted, unmasked.control, unmasked.warnings) == ("ai_assisted", None, ())
